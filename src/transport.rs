//! The tokio transport: name resolution, TCP connect per address, TLS (implicit or after
//! STARTTLS) with certificate capture, and the loop that feeds the sans-IO session.
//!
//! Every network wait has a deadline. A reply's deadline starts when the command is sent
//! and is not extended by bytes that trickle in: a server sending one byte a second cannot
//! keep us waiting longer than `--timeout` for one reply.

use crate::failure::{
    CertSummary, ConnectAttempt, ConnectErrorKind, DnsErrorKind, Failure, TlsFailure,
    TlsFailureKind,
};
use crate::protocol::command::UnsafeValue;
use crate::protocol::escape_bytes;
use crate::session::{Event, Io, Session, QUIT_GRACE};
use crate::setting::Setting;
use crate::stage::Stage;
use crate::tls_mode::TlsMode;
use crate::transcript::{lines_of, Direction, Entry, Transcript, CONNECTED, TLS_ESTABLISHED};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Serialize;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Which address families to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpVersion {
    /// Every address the name resolves to, in resolver order.
    #[default]
    Any,
    /// IPv4 only (`-4`).
    V4,
    /// IPv6 only (`-6`).
    V6,
}

/// What the TLS handshake established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// The negotiated cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// True: the chain and host name were verified (always, on success).
    pub verified: bool,
    /// The server's leaf certificate.
    pub certificate: Option<CertSummary>,
}

/// The clock of one check: every timestamp is milliseconds since its start.
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    /// Starts the clock now.
    pub fn start() -> Self {
        Clock(Instant::now())
    }

    /// Milliseconds since the start, rounded to 0.1 ms.
    pub fn ms(&self) -> f64 {
        (self.0.elapsed().as_secs_f64() * 10_000.0).round() / 10.0
    }
}

/// Resolves `host` (or uses `connect_to`) to socket addresses through getaddrinfo (the
/// system's full name service: hosts file, nsswitch), or through hickory and
/// `dns_server` when one is given (a testing aid), bounded by `timeout`.
pub async fn resolve_with_server(
    host: &str,
    port: u16,
    connect_to: Option<IpAddr>,
    ip: IpVersion,
    timeout: Duration,
    dns_server: Option<SocketAddr>,
) -> Result<Vec<SocketAddr>, Failure> {
    let wanted = |a: &IpAddr| match ip {
        IpVersion::Any => true,
        IpVersion::V4 => a.is_ipv4(),
        IpVersion::V6 => a.is_ipv6(),
    };
    let literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    if let Some(ipaddr) = connect_to.or(literal) {
        if !wanted(&ipaddr) {
            return Err(Failure::Dns {
                kind: DnsErrorKind::NoSuchHost,
                detail: format!("{ipaddr} is not of the requested address family"),
            });
        }
        return Ok(vec![SocketAddr::new(ipaddr, port)]);
    }
    if let Some(server) = dns_server {
        let addrs: Vec<SocketAddr> = crate::discover::dns::resolve_for_check(server, host, timeout)
            .await?
            .into_iter()
            .filter(wanted)
            .map(|a| SocketAddr::new(a, port))
            .collect();
        if addrs.is_empty() {
            return Err(Failure::Dns {
                kind: DnsErrorKind::NoSuchHost,
                detail: format!("{host} has no address of the requested family"),
            });
        }
        return Ok(addrs);
    }
    let name = host.to_owned();
    let lookup = tokio::task::spawn_blocking(move || {
        let hints = dns_lookup::AddrInfoHints {
            socktype: dns_lookup::SockType::Stream.into(),
            ..Default::default()
        };
        dns_lookup::getaddrinfo(Some(&name), None, Some(hints)).map(|it| {
            let mut out: Vec<IpAddr> = Vec::new();
            for ai in it.flatten() {
                let a = ai.sockaddr.ip();
                if !out.contains(&a) {
                    out.push(a);
                }
            }
            out
        })
    });
    let result = match tokio::time::timeout(timeout, lookup).await {
        Err(_) => {
            return Err(Failure::Dns {
                kind: DnsErrorKind::LookupFailed,
                detail: format!("no answer from the resolver within {}s", timeout.as_secs()),
            })
        }
        Ok(Err(join)) => {
            return Err(Failure::Dns {
                kind: DnsErrorKind::LookupFailed,
                detail: join.to_string(),
            })
        }
        Ok(Ok(r)) => r,
    };
    match result {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(wanted)
                .map(|a| SocketAddr::new(a, port))
                .collect();
            if addrs.is_empty() {
                Err(Failure::Dns {
                    kind: DnsErrorKind::NoSuchHost,
                    detail: format!("{host} has no address of the requested family"),
                })
            } else {
                Ok(addrs)
            }
        }
        Err(e) => {
            use dns_lookup::LookupErrorKind as K;
            let kind = match e.kind() {
                K::NoName | K::NoData => DnsErrorKind::NoSuchHost,
                _ => DnsErrorKind::LookupFailed,
            };
            let detail = io::Error::from(e).to_string();
            Err(Failure::Dns { kind, detail })
        }
    }
}

/// RFC 8305 §5 "Connection Attempt Delay": how long one attempt may run alone before
/// the next address is tried in parallel. 250 ms is the RFC's recommended value.
pub const CONNECTION_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Orders addresses for Happy Eyeballs (RFC 8305 §4): keep the resolver's preference
/// (getaddrinfo applies RFC 6724), but alternate the families, starting with the family of
/// the first address, so one unreachable family costs one attempt delay, not a timeout
/// per address.
pub fn interleave_families(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return Vec::new();
    };
    let first_v6 = first.is_ipv6();
    let (mut a, mut b): (Vec<SocketAddr>, Vec<SocketAddr>) =
        addrs.iter().partition(|x| x.is_ipv6() == first_v6);
    a.reverse();
    b.reverse();
    let mut out = Vec::with_capacity(addrs.len());
    while !a.is_empty() || !b.is_empty() {
        out.extend(a.pop());
        out.extend(b.pop());
    }
    out
}

/// Connects with Happy Eyeballs (RFC 8305 §5): the addresses are tried in
/// [`interleave_families`] order, a new attempt starts every
/// [`CONNECTION_ATTEMPT_DELAY`] (or at once when the previous one fails), and the first
/// to connect wins. Every attempt is reported, including those abandoned because another
/// address connected first. Each attempt has its own `timeout`.
pub async fn connect(
    addrs: &[SocketAddr],
    timeout: Duration,
) -> (Option<TcpStream>, Vec<ConnectAttempt>) {
    let order = interleave_families(addrs);
    let started = Instant::now();
    let mut attempts: Vec<Option<ConnectAttempt>> = vec![None; order.len()];
    let mut begun: Vec<Instant> = Vec::with_capacity(order.len());
    let mut running = tokio::task::JoinSet::new();
    let mut winner = None;
    let mut next = 0;
    while winner.is_none() && (next < order.len() || !running.is_empty()) {
        if running.is_empty() && next < order.len() {
            spawn_attempt(&mut running, next, order[next], timeout);
            begun.push(Instant::now());
            next += 1;
        }
        let delay = tokio::time::sleep(CONNECTION_ATTEMPT_DELAY);
        tokio::select! {
            joined = running.join_next() => {
                let Some(Ok((i, result, ms))) = joined else { continue };
                let (attempt, stream) = attempt_result(order[i], result, ms, timeout);
                attempts[i] = Some(attempt);
                if stream.is_some() {
                    winner = stream;
                } else if next < order.len() {
                    // RFC 8305 §5: a failed attempt starts the next one at once.
                    spawn_attempt(&mut running, next, order[next], timeout);
                    begun.push(Instant::now());
                    next += 1;
                }
            }
            _ = delay, if next < order.len() => {
                spawn_attempt(&mut running, next, order[next], timeout);
                begun.push(Instant::now());
                next += 1;
            }
        }
    }
    running.abort_all();
    let won = attempts
        .iter()
        .flatten()
        .find(|a| a.error.is_none())
        .map(|a| a.addr);
    let mut out = Vec::new();
    for (i, a) in attempts.into_iter().enumerate() {
        match a {
            Some(a) => out.push(a),
            // Still pending when another address connected: reported, not hidden.
            None if i < begun.len() => out.push(ConnectAttempt {
                addr: order[i],
                error: Some(ConnectErrorKind::Timeout),
                detail: format!(
                    "no answer after {} ms; abandoned when {} connected (Happy Eyeballs, RFC 8305)",
                    begun[i].elapsed().as_millis(),
                    won.map(|w| w.to_string()).unwrap_or_default()
                ),
                ms: ms_since(begun[i]),
            }),
            None => {}
        }
    }
    tracing::debug!(
        "connect: {} attempts in {:.1} ms",
        out.len(),
        ms_since(started)
    );
    (winner, out)
}

type AttemptResult = (
    usize,
    Result<io::Result<TcpStream>, tokio::time::error::Elapsed>,
    f64,
);

fn spawn_attempt(
    set: &mut tokio::task::JoinSet<AttemptResult>,
    i: usize,
    addr: SocketAddr,
    timeout: Duration,
) {
    set.spawn(async move {
        let start = Instant::now();
        let result = tokio::time::timeout(timeout, TcpStream::connect(addr)).await;
        (i, result, ms_since(start))
    });
}

fn ms_since(start: Instant) -> f64 {
    (start.elapsed().as_secs_f64() * 10_000.0).round() / 10.0
}

/// One finished attempt as a report line, and the stream when it connected.
fn attempt_result(
    addr: SocketAddr,
    result: Result<io::Result<TcpStream>, tokio::time::error::Elapsed>,
    ms: f64,
    timeout: Duration,
) -> (ConnectAttempt, Option<TcpStream>) {
    match result {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            (
                ConnectAttempt {
                    addr,
                    error: None,
                    detail: "connected".into(),
                    ms,
                },
                Some(stream),
            )
        }
        Ok(Err(e)) => {
            let kind = match e.kind() {
                io::ErrorKind::ConnectionRefused => ConnectErrorKind::Refused,
                io::ErrorKind::TimedOut => ConnectErrorKind::Timeout,
                io::ErrorKind::NetworkUnreachable | io::ErrorKind::HostUnreachable => {
                    ConnectErrorKind::Unreachable
                }
                _ => match e.raw_os_error() {
                    // ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL (no v6 address) on Linux.
                    Some(101) | Some(113) | Some(99) => ConnectErrorKind::Unreachable,
                    _ => ConnectErrorKind::Other,
                },
            };
            (
                ConnectAttempt {
                    addr,
                    error: Some(kind),
                    detail: e.to_string(),
                    ms,
                },
                None,
            )
        }
        Err(_) => (
            ConnectAttempt {
                addr,
                error: Some(ConnectErrorKind::Timeout),
                detail: format!("no answer within {}", crate::transport::secs(timeout)),
                ms,
            },
            None,
        ),
    }
}

/// A duration for people: `15s`, `1.5s`.
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}s", s as u64)
    } else {
        format!("{s:.1}s")
    }
}

/// Opens the connection through `--proxy` (the proxy resolves `host`): the stream is the
/// tunnel, ready for SMTP or implicit TLS.
pub async fn connect_via_proxy(
    proxy: &crate::proxy::ProxyConfig,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<(TcpStream, String), crate::proxy::ProxyFailure> {
    crate::proxy::connect(proxy, host, port, timeout).await
}

/// Builds the trust store: webpki-roots plus the `--ca-file` anchors.
pub fn root_store(extra: &[CertificateDer<'static>]) -> RootCertStore {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for c in extra {
        // A bad extra anchor was already reported when the file was read.
        let _ = roots.add(c.clone());
    }
    roots
}

/// Why a certificate or key file given by the user cannot be used. Its `Display` names
/// the file and what was wrong with it; it holds paths and library messages, never key
/// material.
#[derive(Debug)]
pub enum PemFileError {
    /// The file could not be read.
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's error.
        error: io::Error,
    },
    /// The file is not PEM, or a PEM block in it is damaged.
    NotPem {
        /// The file.
        path: std::path::PathBuf,
        /// `certificate` or `key`: what the file should hold.
        what: &'static str,
        /// The PEM parser's error.
        error: io::Error,
    },
    /// The file is PEM but holds no block of the kind needed.
    Missing {
        /// The file.
        path: std::path::PathBuf,
        /// `certificate` or `private key`.
        what: &'static str,
    },
    /// rustls refused a certificate as a trust anchor (`--ca-file`).
    NotTrustAnchor {
        /// The file.
        path: std::path::PathBuf,
        /// rustls's reason.
        error: rustls::Error,
    },
    /// rustls refused the client certificate and key together: the key does not match
    /// the certificate, or its algorithm is not supported.
    KeyMismatch {
        /// The certificate file.
        cert: std::path::PathBuf,
        /// The key file.
        key: std::path::PathBuf,
        /// rustls's reason.
        error: rustls::Error,
    },
}

impl std::fmt::Display for PemFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PemFileError::Read { path, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            PemFileError::NotPem { path, what, error } => {
                write!(f, "{}: not a PEM {what} file: {error}", path.display())
            }
            PemFileError::Missing { path, what } => {
                write!(f, "{}: no PEM {what} found", path.display())
            }
            PemFileError::NotTrustAnchor { path, error } => write!(
                f,
                "{}: certificate not usable as a trust anchor: {error}",
                path.display()
            ),
            PemFileError::KeyMismatch { cert, key, error } => write!(
                f,
                "{} and {}: the key does not fit the certificate or is not supported: {error}",
                cert.display(),
                key.display()
            ),
        }
    }
}

impl std::error::Error for PemFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PemFileError::Read { error, .. } | PemFileError::NotPem { error, .. } => Some(error),
            PemFileError::NotTrustAnchor { error, .. }
            | PemFileError::KeyMismatch { error, .. } => Some(error),
            PemFileError::Missing { .. } => None,
        }
    }
}

/// Reads a whole file for [`load_ca_file`] / [`ClientCert::load`].
fn read_pem_file(path: &std::path::Path) -> Result<Vec<u8>, PemFileError> {
    std::fs::read(path).map_err(|error| PemFileError::Read {
        path: path.to_owned(),
        error,
    })
}

/// Every PEM certificate in `path`, at least one.
fn read_certificates(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, PemFileError> {
    let data = read_pem_file(path)?;
    let certs = rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| PemFileError::NotPem {
            path: path.to_owned(),
            what: "certificate",
            error,
        })?;
    if certs.is_empty() {
        return Err(PemFileError::Missing {
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(certs)
}

/// Reads PEM certificates from a file (for `--ca-file`). The error names the file.
pub fn load_ca_file(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, PemFileError> {
    let certs = read_certificates(path)?;
    let mut store = RootCertStore::empty();
    for c in &certs {
        store
            .add(c.clone())
            .map_err(|error| PemFileError::NotTrustAnchor {
                path: path.to_owned(),
                error,
            })?;
    }
    Ok(certs)
}

/// A verifier that records the presented leaf certificate, then delegates every
/// decision to rustls's WebPKI verifier. We need the certificate to explain a
/// failure (who issued it, which names it covers, when it expired).
#[derive(Debug)]
struct CapturingVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    seen: Arc<Mutex<Option<CertificateDer<'static>>>>,
}

impl ServerCertVerifier for CapturingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(end_entity.clone().into_owned());
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A stream wrapper that keeps the first bytes read, so a failed implicit-TLS handshake
/// can tell "the server spoke clear-text SMTP" from other failures.
struct Recording<S> {
    inner: S,
    /// Shared so the bytes survive the stream being dropped by a failed handshake.
    first: Arc<Mutex<Vec<u8>>>,
}

const RECORD_FIRST: usize = 256;

impl<S: AsyncRead + Unpin> AsyncRead for Recording<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            if let Ok(mut first) = this.first.lock() {
                let room = RECORD_FIRST.saturating_sub(first.len());
                let new = &buf.filled()[before..];
                first.extend_from_slice(&new[..new.len().min(room)]);
            }
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recording<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type TlsStream = tokio_rustls::client::TlsStream<Recording<TcpStream>>;

/// The connection, plain or encrypted.
enum SmtpStream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
    /// Transiently empty while the stream is moved into a handshake.
    Gone,
}

impl SmtpStream {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.quickack();
        match self {
            SmtpStream::Plain(s) => s.read(buf).await,
            SmtpStream::Tls(s) => s.read(buf).await,
            SmtpStream::Gone => Ok(0),
        }
    }

    /// Acknowledge what arrives at once instead of after the delayed-ACK timer (40 ms on
    /// Linux). A TLS 1.3 server sends its session tickets right after the handshake;
    /// when it has Nagle on, its next reply (the greeting on 465, the EHLO reply after
    /// STARTTLS) waits for our ACK of those tickets — a 40 ms stall measured against
    /// Postfix on every implicit-TLS check. Linux clears the flag by itself, so it is set
    /// again before every read.
    fn quickack(&self) {
        #[cfg(target_os = "linux")]
        {
            let tcp = match self {
                SmtpStream::Plain(s) => s,
                SmtpStream::Tls(s) => &s.get_ref().0.inner,
                SmtpStream::Gone => return,
            };
            let _ = tcp.set_quickack(true);
        }
    }

    async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            SmtpStream::Plain(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
            SmtpStream::Tls(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
            SmtpStream::Gone => Err(io::Error::from(io::ErrorKind::NotConnected)),
        }
    }

    async fn shutdown(&mut self) {
        let _ = match self {
            SmtpStream::Plain(s) => s.shutdown().await,
            SmtpStream::Tls(s) => s.shutdown().await,
            SmtpStream::Gone => Ok(()),
        };
    }
}

/// A TLS client certificate and its key (`--client-cert`, `--client-key`). The key is
/// a secret: no `Debug` shows it.
pub struct ClientCert {
    /// The certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClientCert({} certificates, key <redacted>)",
            self.chain.len()
        )
    }
}

impl ClientCert {
    /// Reads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1),
    /// and checks that rustls accepts them together. Errors name the file.
    pub fn load(cert: &std::path::Path, key: &std::path::Path) -> Result<ClientCert, PemFileError> {
        let chain = read_certificates(cert)?;
        let data = read_pem_file(key)?;
        let key_der = rustls_pemfile::private_key(&mut data.as_slice())
            .map_err(|error| PemFileError::NotPem {
                path: key.to_owned(),
                what: "key",
                error,
            })?
            .ok_or_else(|| PemFileError::Missing {
                path: key.to_owned(),
                what: "private key",
            })?;
        let c = ClientCert {
            chain,
            key: key_der,
        };
        // rustls checks that the key is usable and matches the certificate.
        c.apply(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(RootCertStore::empty()),
        )
        .map_err(|error| PemFileError::KeyMismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
            error,
        })?;
        Ok(c)
    }

    fn apply(
        &self,
        b: rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>,
    ) -> Result<rustls::ClientConfig, rustls::Error> {
        b.with_client_auth_cert(self.chain.clone(), self.key.clone_key())
    }
}

/// TLS settings shared by every handshake of one check.
#[derive(Clone)]
pub struct TlsSettings {
    /// The name the certificate must carry (the host the user typed).
    pub server_name: ServerName<'static>,
    /// Trust anchors.
    pub roots: Arc<RootCertStore>,
    /// The client certificate offered when the server asks (RFC 8446 §4.3.2).
    pub client_cert: Option<Arc<ClientCert>>,
}

/// A host name rustls cannot verify a certificate against: not a DNS name (letters,
/// digits, hyphens and dots, RFC 1123 §2.1; an international name in its `xn--` form)
/// nor an IP address. A configuration error, found before anything touches the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidServerName {
    /// The host as given.
    pub host: String,
}

impl std::fmt::Display for InvalidServerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {INVALID_SERVER_NAME}", self.host)
    }
}

impl std::error::Error for InvalidServerName {}

/// A host TLS cannot verify is a refused host setting, wherever it is found (a
/// config's validation, a check's TLS settings): one rule, one message.
impl From<InvalidServerName> for UnsafeValue {
    fn from(_: InvalidServerName) -> UnsafeValue {
        UnsafeValue {
            what: Setting::Host,
            reason: INVALID_SERVER_NAME,
        }
    }
}

/// Why a host is refused as a TLS server name (RFC 6066 §3 names a host by its DNS name;
/// rustls also accepts an IP address).
pub const INVALID_SERVER_NAME: &str = "is not a host name TLS can verify: use a DNS name (letters, digits, hyphens and dots; an international name in its xn-- form) or an IP address";

/// The name a server certificate must carry for `host` (brackets around an IPv6
/// literal are dropped).
pub fn tls_server_name(host: &str) -> Result<ServerName<'static>, InvalidServerName> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_owned()).map_err(|_| InvalidServerName {
        host: host.to_owned(),
    })
}

impl TlsSettings {
    /// Settings for `host` with the given trust anchors.
    pub fn new(host: &str, roots: Arc<RootCertStore>) -> Result<TlsSettings, InvalidServerName> {
        Ok(TlsSettings {
            server_name: tls_server_name(host)?,
            roots,
            client_cert: None,
        })
    }

    fn connector(&self) -> (TlsConnector, Arc<Mutex<Option<CertificateDer<'static>>>>) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            self.roots.clone(),
            provider.clone(),
        )
        .build()
        .expect("a root store built from webpki-roots is never empty");
        let seen = Arc::new(Mutex::new(None));
        let verifier = CapturingVerifier {
            inner,
            seen: seen.clone(),
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous() // only to install the capturing wrapper; it delegates every decision
            .with_custom_certificate_verifier(Arc::new(verifier));
        // ClientCert::load already proved the pair is accepted.
        let mut config = match &self.client_cert {
            Some(c) => c
                .apply(builder)
                .expect("the client certificate was checked when it was loaded"),
            None => builder.with_no_client_auth(),
        };
        // Each handshake has its own config, so a session cache could never be reused;
        // without it the server's TLS 1.3 tickets (each with a copy of the certificate
        // chain) are not kept for the rest of the check.
        config.resumption = rustls::client::Resumption::disabled();
        (TlsConnector::from(Arc::new(config)), seen)
    }
}

/// Runs a TLS handshake over `tcp` with a deadline. On success returns the stream and
/// what was negotiated; on failure the typed reason and the certificate, if one came.
async fn handshake(
    tcp: TcpStream,
    tls: &TlsSettings,
    timeout: Duration,
    after_starttls: bool,
) -> Result<(TlsStream, TlsInfo), Failure> {
    let (connector, seen) = tls.connector();
    let first = Arc::new(Mutex::new(Vec::new()));
    let recording = Recording {
        inner: tcp,
        first: first.clone(),
    };
    let fut = connector.connect(tls.server_name.clone(), recording);
    let outcome = tokio::time::timeout(timeout, fut).await;
    let cert = || {
        seen.lock()
            .ok()
            .and_then(|g| g.as_ref().map(|c| summarize_certificate(c)))
    };
    match outcome {
        Err(_) => Err(Failure::Timeout { stage: Stage::Tls }),
        Ok(Ok(stream)) => {
            let (_, conn) = stream.get_ref();
            let version = match conn.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
                Some(v) => format!("{v:?}"),
                None => "unknown".to_owned(),
            };
            let cipher = conn
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_default();
            let certificate = conn
                .peer_certificates()
                .and_then(|c| c.first())
                .map(summarize_certificate);
            Ok((
                stream,
                TlsInfo {
                    version,
                    cipher,
                    verified: true,
                    certificate,
                },
            ))
        }
        Ok(Err(err)) => {
            let first = first.lock().map(|f| f.clone()).unwrap_or_default();
            Err(TlsFailure {
                kind: classify_tls_error(&err, &first),
                certificate: cert(),
                after_starttls,
            }
            .into())
        }
    }
}

/// Maps the typed rustls error inside tokio-rustls's `io::Error` to a failure kind
/// (DESIGN: never from message text). `first` holds the first bytes the server sent.
fn classify_tls_error(err: &io::Error, first: &[u8]) -> TlsFailureKind {
    if looks_like_smtp(first) {
        return TlsFailureKind::ClearTextReply {
            first_line: first_line(first),
        };
    }
    if let Some(rerr) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        use rustls::CertificateError as C;
        use rustls::{AlertDescription as A, PeerIncompatible as P};
        return match rerr {
            rustls::Error::AlertReceived(A::CertificateRequired) => {
                TlsFailureKind::ClientCertificateRequired
            }
            rustls::Error::AlertReceived(A::ProtocolVersion) => {
                TlsFailureKind::VersionTooOld { offered: None }
            }
            rustls::Error::AlertReceived(alert) => TlsFailureKind::Alert {
                alert: format!("{alert:?}"),
            },
            rustls::Error::PeerIncompatible(P::ServerDoesNotSupportTls12Or13) => {
                TlsFailureKind::VersionTooOld {
                    offered: server_hello_version(first),
                }
            }
            rustls::Error::InvalidCertificate(c) => match c {
                C::UnknownIssuer | C::BadSignature => TlsFailureKind::UntrustedIssuer,
                C::Expired | C::ExpiredContext { .. } => TlsFailureKind::Expired,
                C::NotValidYet | C::NotValidYetContext { .. } => TlsFailureKind::NotYetValid,
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    TlsFailureKind::NameMismatch
                }
                other => TlsFailureKind::BadCertificate {
                    detail: format!("{other:?}"),
                },
            },
            other => TlsFailureKind::Handshake {
                detail: other.to_string(),
            },
        };
    }
    if err.kind() == io::ErrorKind::UnexpectedEof || err.kind() == io::ErrorKind::ConnectionReset {
        return TlsFailureKind::ClosedDuringHandshake;
    }
    TlsFailureKind::Handshake {
        detail: err.to_string(),
    }
}

/// The failure kind of a read error after the handshake, when it is a TLS alert the
/// server sent (TLS 1.3 servers reject a missing client certificate only after the
/// client's side of the handshake is done, so the alert arrives with the first read).
fn tls_alert_after_handshake(err: &io::Error) -> Option<TlsFailureKind> {
    let rerr = err.get_ref()?.downcast_ref::<rustls::Error>()?;
    matches!(rerr, rustls::Error::AlertReceived(_)).then(|| classify_tls_error(err, &[]))
}

/// The protocol version in a ServerHello at the start of `first` (RFC 5246 §7.4.1.3:
/// record header of 5 bytes, handshake type 2 and a 3-byte length, then
/// `server_version`), as people name it.
fn server_hello_version(first: &[u8]) -> Option<String> {
    if first.len() < 11 || first[0] != 0x16 || first[5] != 0x02 {
        return None;
    }
    Some(match (first[9], first[10]) {
        (3, 0) => "SSL 3.0".to_owned(),
        (3, 1) => "TLS 1.0".to_owned(),
        (3, 2) => "TLS 1.1".to_owned(),
        (3, 3) => "TLS 1.2".to_owned(),
        (major, minor) => format!("version {major}.{minor}"),
    })
}

/// True when bytes look like an SMTP reply line (`220 …`) rather than a TLS record
/// (whose first byte is a content type, 0x14..=0x18).
fn looks_like_smtp(first: &[u8]) -> bool {
    first.len() >= 3 && first[..3].iter().all(u8::is_ascii_digit)
}

fn first_line(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(bytes.len());
    escape_bytes(&bytes[..end])
}

/// Extracts subject, issuer, SANs and validity from a DER certificate.
pub fn summarize_certificate(der: &CertificateDer<'_>) -> CertSummary {
    use x509_parser::prelude::*;
    let Ok((_, cert)) = X509Certificate::from_der(der.as_ref()) else {
        return CertSummary {
            subject: "(unparseable certificate)".into(),
            ..CertSummary::default()
        };
    };
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                // IA5String allows control characters: escape like every other
                // server-supplied text.
                GeneralName::DNSName(d) => sans.push(escape_bytes(d.as_bytes())),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => sans
                        .push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or([0; 4])).to_string()),
                    16 => sans.push(
                        IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or([0; 16])).to_string(),
                    ),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let rfc3339 = |t: &ASN1Time| {
        ::time::OffsetDateTime::from_unix_timestamp(t.timestamp())
            .ok()
            .and_then(|d| {
                d.format(&::time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default()
    };
    CertSummary {
        subject: escape_bytes(cert.subject().to_string().as_bytes()),
        issuer: escape_bytes(cert.issuer().to_string().as_bytes()),
        sans,
        not_before: rfc3339(&cert.validity().not_before),
        not_after: rfc3339(&cert.validity().not_after),
    }
}

/// Per-stage timing as the session reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StageResult {
    /// The stage.
    pub stage: Stage,
    /// Whether it passed.
    pub ok: bool,
    /// Milliseconds from its start to its end.
    pub ms: f64,
    /// Milliseconds from the check's start to this stage's start (the HTML waterfall
    /// draws each stage at its place in time).
    pub start_ms: f64,
}

/// What an [`Observer`] is told, as it happens.
pub enum Progress<'a> {
    /// A transcript line was recorded (already redacted and escaped).
    Line(&'a Entry),
    /// A stage finished.
    Stage(&'a StageResult),
}

/// A live view of a running check (`smtprobe web` streams it to the browser). It sees
/// only what the transcript and stage list will hold, so it can never see a secret.
#[derive(Clone)]
pub struct Observer(pub Arc<dyn Fn(Progress<'_>) + Send + Sync>);

// An observer only receives copies of what is recorded; a panic inside it cannot leave a
// check's state half-updated for a caller that catches it (and `Config` stays
// `UnwindSafe`, as it was before the field existed).
impl std::panic::UnwindSafe for Observer {}
impl std::panic::RefUnwindSafe for Observer {}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

/// What one SMTP connection produced.
pub struct FinishedConnection {
    /// The session's verdict.
    pub result: Result<(), Failure>,
    /// The session, for capabilities, greeting and mechanism.
    pub session: Session,
    /// TLS details, when a handshake completed.
    pub tls: Option<TlsInfo>,
}

/// Records transcript entries and stage timings against the check's clock.
pub struct Recorder {
    /// The check's clock.
    pub clock: Clock,
    /// Everything said, in order.
    pub transcript: Transcript,
    /// Stage results, in order.
    pub stages: Vec<StageResult>,
    open: Vec<(Stage, f64)>,
    /// Told about every line and finished stage as it is recorded.
    pub observer: Option<Observer>,
}

impl Recorder {
    /// A recorder with a running clock.
    pub fn new(clock: Clock) -> Self {
        Recorder {
            clock,
            transcript: Transcript::new(),
            stages: Vec::new(),
            open: Vec::new(),
            observer: None,
        }
    }

    /// Records a line.
    pub fn line(&mut self, dir: Direction, stage: Stage, tls: bool, text: String) {
        let ms = self.clock.ms();
        let entry = Entry {
            ms,
            dir,
            tls,
            stage,
            text,
        };
        if let Some(o) = &self.observer {
            (o.0)(Progress::Line(&entry));
        }
        self.transcript.push(entry);
    }

    /// Records what a session event says: its transcript lines, or a stage's start or
    /// end.
    pub fn record(&mut self, event: &Event) {
        match event {
            Event::StageStarted(s) => self.start(*s),
            Event::StagePassed(s) => self.end(*s, true),
            other => {
                for l in lines_of(other) {
                    self.line(l.dir, l.stage, l.tls, l.text);
                }
            }
        }
    }

    /// Records an event line.
    pub fn event(&mut self, stage: Stage, tls: bool, text: String) {
        self.line(Direction::Event, stage, tls, text);
    }

    /// A stage began.
    pub fn start(&mut self, stage: Stage) {
        self.open.push((stage, self.clock.ms()));
    }

    /// A stage ended.
    pub fn end(&mut self, stage: Stage, ok: bool) {
        let now = self.clock.ms();
        let start = match self.open.iter().rposition(|(s, _)| *s == stage) {
            Some(i) => self.open.remove(i).1,
            None => now,
        };
        let result = StageResult {
            stage,
            ok,
            ms: ((now - start) * 10.0).round() / 10.0,
            start_ms: (start * 10.0).round() / 10.0,
        };
        if let Some(o) = &self.observer {
            (o.0)(Progress::Stage(&result));
        }
        self.stages.push(result);
    }

    /// Closes the books at the end of a connection: the failing stage is marked failed,
    /// stages still open (QUIT after a failure) are dropped.
    pub fn close(&mut self, failed: Option<Stage>) {
        if let Some(stage) = failed {
            self.end(stage, false);
        }
        self.open.clear();
    }
}

/// One SMTP connection while its session runs: the stream, and what the session is
/// told about it.
struct Driver<'a> {
    session: Session,
    conn: SmtpStream,
    tls: &'a TlsSettings,
    /// The per-wait deadline of the check.
    timeout: Duration,
    /// What the handshake established, once one completed.
    tls_info: Option<TlsInfo>,
    /// Bytes the session asked to send, written together when it has nothing more to
    /// ask: a pipelined MAIL/RCPT/DATA group (RFC 2920) leaves in one write (one
    /// segment, one TLS record) instead of one per command.
    outbox: Vec<u8>,
}

impl Driver<'_> {
    /// Runs a handshake on `tcp` and records it; true when it completed. A failure goes
    /// to the session, which decides what it means (the stream is gone then).
    async fn handshake(
        &mut self,
        tcp: TcpStream,
        after_starttls: bool,
        rec: &mut Recorder,
    ) -> bool {
        match handshake(tcp, self.tls, self.timeout, after_starttls).await {
            Ok((stream, info)) => {
                rec.line(
                    Direction::TlsEstablished,
                    Stage::Tls,
                    true,
                    tls_event_text(&info),
                );
                self.tls_info = Some(info);
                self.conn = SmtpStream::Tls(Box::new(stream));
                true
            }
            Err(f) => {
                let detail = describe_tls(&f);
                self.session.handle_tls_failed(f, &detail);
                self.conn = SmtpStream::Gone;
                false
            }
        }
    }

    /// The handshake the session asked for after STARTTLS's 220 (RFC 3207 §4).
    async fn start_tls(&mut self, rec: &mut Recorder) {
        // Never carry plaintext bytes across the TLS boundary (RFC 3207 §4.2).
        let _ = self.flush(self.timeout).await;
        match std::mem::replace(&mut self.conn, SmtpStream::Gone) {
            SmtpStream::Plain(tcp) => {
                if self.handshake(tcp, true, rec).await {
                    self.session.handle_tls_established();
                }
            }
            // Unreachable by the session's rules (STARTTLS is sent only in the clear);
            // reported, not invented here.
            other => {
                self.conn = other;
                self.session.handle_tls_failed(
                    Failure::StartTlsNotOffered,
                    "STARTTLS asked for on a connection that is not plain TCP",
                );
            }
        }
    }

    /// Writes the outbox within `limit`; true when something was written.
    async fn flush(&mut self, limit: Duration) -> io::Result<bool> {
        if self.outbox.is_empty() {
            return Ok(false);
        }
        let written = write_bounded(&mut self.conn, &self.outbox, limit).await;
        self.outbox.clear();
        written.map(|()| true)
    }

    /// Tells the session what a failed read means: a TLS alert after the handshake is
    /// the server's typed verdict, not a silent close.
    fn read_failed(&mut self, e: &io::Error, mode: TlsMode) {
        let alert = tls_alert_after_handshake(e).map(|kind| {
            Failure::from(TlsFailure {
                kind,
                certificate: self.tls_info.as_ref().and_then(|i| i.certificate.clone()),
                after_starttls: mode != TlsMode::Implicit,
            })
        });
        self.session.handle_read_failed(&e.to_string(), alert)
    }
}

/// Drives one SMTP session over an established TCP connection (TLS-wrapped first for
/// implicit mode): records what the session reports, performs what it asks, and tells
/// it every input, failure and deadline. Only the session decides the outcome.
pub async fn run_connection(
    tcp: TcpStream,
    session: Session,
    mode: TlsMode,
    tls: &TlsSettings,
    timeout: Duration,
    rec: &mut Recorder,
) -> FinishedConnection {
    let mut d = Driver {
        session,
        conn: SmtpStream::Gone,
        tls,
        timeout,
        tls_info: None,
        outbox: Vec::new(),
    };
    if mode == TlsMode::Implicit {
        // RFC 8314 §3: the handshake comes before the greeting.
        rec.start(Stage::Tls);
        if d.handshake(tcp, false, rec).await {
            rec.end(Stage::Tls, true);
        }
    } else {
        d.conn = SmtpStream::Plain(tcp);
    }

    let quit_wait = timeout.min(QUIT_GRACE);
    let mut deadline = tokio::time::Instant::now() + timeout;
    // Replies are short (an EHLO reply is a few hundred bytes) and the reply parser is
    // resumable, so 4 kB per read is plenty; 16 kB cost 12 MB more in a batch of 1000
    // open checks.
    let mut buf = vec![0u8; 4 * 1024];
    let result = 'outer: loop {
        // Record what happened, then do what the session asks, one request at a time.
        while let Some(event) = d.session.poll_event() {
            let Event::Finished(outcome) = event else {
                rec.record(&event);
                continue;
            };
            // The session is over: what it still queued (up to its `Io::Close`) is
            // written within QUIT's grace, then the connection closes.
            while let Some(Io::Transmit(bytes)) = d.session.poll_io() {
                d.outbox.extend_from_slice(&bytes);
            }
            let _ = d.flush(quit_wait).await;
            break 'outer outcome;
        }
        match d.session.poll_io() {
            Some(Io::Transmit(bytes)) => {
                d.outbox.extend_from_slice(&bytes);
                continue;
            }
            Some(Io::StartTls) => {
                d.start_tls(rec).await;
                continue;
            }
            // `Close` comes only after `Finished`, which ends the loop above.
            Some(Io::Close) | None => {}
        }
        match d.flush(timeout).await {
            Err(e) => {
                d.session.handle_write_failed(&e.to_string());
                continue;
            }
            // A new command starts a new wait.
            Ok(true) => {
                let wait = d.session.poll_timeout(timeout).unwrap_or(quit_wait);
                deadline = tokio::time::Instant::now() + wait;
            }
            Ok(false) => {}
        }
        match tokio::time::timeout_at(deadline, d.conn.read(&mut buf)).await {
            Err(_) => d.session.handle_timeout(),
            Ok(Ok(0)) => d.session.handle_eof(),
            Ok(Ok(n)) => d.session.handle_input(&buf[..n]),
            Ok(Err(e)) => d.read_failed(&e, mode),
        }
    };
    d.conn.shutdown().await;
    rec.close(result.as_ref().err().map(Failure::stage));
    FinishedConnection {
        result,
        session: d.session,
        tls: d.tls_info,
    }
}

/// Writes with a deadline: a server that stops reading cannot hold the check.
async fn write_bounded(conn: &mut SmtpStream, data: &[u8], limit: Duration) -> io::Result<()> {
    tokio::time::timeout(limit, conn.write_all(data))
        .await
        .unwrap_or_else(|_| Err(io::Error::from(io::ErrorKind::TimedOut)))
}

/// The event line for a completed handshake ([`Direction::TlsEstablished`]; a saved
/// fixture marks the TLS boundary by its prefix).
pub fn tls_event_text(info: &TlsInfo) -> String {
    let cert = info
        .certificate
        .as_ref()
        .map(|c| format!(", certificate {} (issuer {})", c.subject, c.issuer))
        .unwrap_or_default();
    format!("{TLS_ESTABLISHED}: {} {}{cert}", info.version, info.cipher)
}

/// The event line for an opened TCP connection.
pub fn connected_event_text(addr: SocketAddr) -> String {
    format!("{CONNECTED} {addr}")
}

fn describe_tls(f: &Failure) -> String {
    match f {
        Failure::Tls(t) => match &t.kind {
            TlsFailureKind::ClearTextReply { first_line } => {
                format!("the server answered in clear text: {first_line}")
            }
            TlsFailureKind::UntrustedIssuer => {
                "certificate not issued by a trusted authority".into()
            }
            TlsFailureKind::Expired => "certificate expired".into(),
            TlsFailureKind::NotYetValid => "certificate not yet valid".into(),
            TlsFailureKind::NameMismatch => "certificate does not name this host".into(),
            TlsFailureKind::BadCertificate { detail } | TlsFailureKind::Handshake { detail } => {
                detail.clone()
            }
            TlsFailureKind::ClosedDuringHandshake => "the server closed the connection".into(),
            TlsFailureKind::ClientCertificateRequired => {
                "the server requires a client certificate (alert certificate_required)".into()
            }
            TlsFailureKind::VersionTooOld { offered } => match offered {
                Some(v) => format!("the server offers only {v}, older than TLS 1.2"),
                None => "the server refused TLS 1.2 and 1.3 (alert protocol_version)".into(),
            },
            TlsFailureKind::Alert { alert } => format!("the server sent the TLS alert {alert}"),
        },
        Failure::Timeout { .. } => "no handshake reply before the deadline".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The errors of `--ca-file` / `--client-cert` are typed and name the file and what
    /// was wrong with it, whichever step failed.
    #[test]
    fn pem_file_errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = load_ca_file(&missing).unwrap_err();
        assert!(matches!(e, PemFileError::Read { .. }), "{e:?}");
        assert!(e.to_string().starts_with("cannot read "), "{e}");
        assert!(e.to_string().contains("missing.pem"), "{e}");
        assert!(std::error::Error::source(&e).is_some());

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "just text\n").unwrap();
        let e = load_ca_file(&text).unwrap_err();
        assert!(
            matches!(
                e,
                PemFileError::Missing {
                    what: "certificate",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .ends_with("notes.txt: no PEM certificate found"),
            "{e}"
        );

        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client.test".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_file = dir.path().join("cert.pem");
        std::fs::write(&cert_file, cert.pem()).unwrap();
        // The certificate given where the key belongs: no key in it.
        let e = ClientCert::load(&cert_file, &cert_file).unwrap_err();
        assert!(
            matches!(
                e,
                PemFileError::Missing {
                    what: "private key",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("no PEM private key found"), "{e}");
        // Another key than the certificate's: rustls refuses the pair.
        let other = dir.path().join("other.key");
        std::fs::write(&other, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
        let key_file = dir.path().join("cert.key");
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        assert!(ClientCert::load(&cert_file, &key_file).is_ok());
        let e = ClientCert::load(&cert_file, &other).unwrap_err();
        assert!(matches!(e, PemFileError::KeyMismatch { .. }), "{e:?}");
        assert!(e.to_string().contains("cert.pem and"), "{e}");
    }

    #[test]
    fn happy_eyeballs_alternates_families_from_the_first() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let got = interleave_families(&[
            a("[2001:db8::1]:587"),
            a("[2001:db8::2]:587"),
            a("[2001:db8::3]:587"),
            a("192.0.2.1:587"),
        ]);
        assert_eq!(
            got,
            [
                a("[2001:db8::1]:587"),
                a("192.0.2.1:587"),
                a("[2001:db8::2]:587"),
                a("[2001:db8::3]:587"),
            ]
        );
        let v4_first = interleave_families(&[a("192.0.2.1:25"), a("[2001:db8::1]:25")]);
        assert_eq!(v4_first[0], a("192.0.2.1:25"));
        assert!(interleave_families(&[]).is_empty());
    }

    /// Found by the hostile-server suite: a certificate's DNS subjectAltNames (IA5String,
    /// which allows control characters) reached the diagnosis evidence and the JSON raw,
    /// so a server could put terminal escapes on the user's screen.
    #[test]
    fn control_characters_in_certificate_names_are_escaped() {
        let evil = "\u{1b}]0;owned\u{7}\u{1b}[2J.mx.test";
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, evil);
        params.subject_alt_names = vec![rcgen::SanType::DnsName(evil.try_into().unwrap())];
        let cert = params.self_signed(&key).unwrap();
        let summary = summarize_certificate(cert.der());
        assert_eq!(summary.sans, ["\\x1b]0;owned\\x07\\x1b[2J.mx.test"]);
        for text in [&summary.subject, &summary.issuer, &summary.sans[0]] {
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
    }
}
