//! A scripted SMTP server on loopback for integration tests, and a runner for the
//! `smtprobe` binary. Only 127.0.0.1 is ever used.
#![allow(dead_code)]

use smtprobe::certs::{ServerCert, TestPki};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

pub mod fixture_server;
pub mod hostile;
pub mod secrets;

pub use fixture_server::{
    fixture, gmail_starttls, raw, replies, FixtureServer, GMAIL_AFTER_TLS, GMAIL_BEFORE_TLS,
    IMPLICIT_GREETING_THEN_QUIT,
};
pub use secrets::{assert_no_secret, leaks, needle, needles, Needle};

/// One step of the server's side.
#[derive(Clone, Debug)]
pub enum Step {
    /// Write these bytes (CRLF is not added).
    Send(Vec<u8>),
    /// Read one line; it must start with this prefix (case-insensitive), else the server
    /// answers `500 unexpected` and stops.
    Expect(&'static str),
    /// Read one line, whatever it is.
    Any,
    /// TLS handshake now (after a 220 to STARTTLS).
    StartTls,
    /// Write bytes one at a time with a pause between them.
    Trickle(Vec<u8>, Duration),
    /// Wait.
    Sleep(Duration),
    /// Read the message body up to the lone ".".
    Body,
    /// Close the connection.
    Close,
    /// Write these bytes this many times, stopping when the client stops reading
    /// (an endless reply without allocating it up front).
    Repeat(Vec<u8>, usize),
    /// Wait until the client sends something (at least one byte, e.g. a TLS
    /// ClientHello) and discard what has arrived.
    Read,
    /// Read and record every line the client sends until it closes or the time passes
    /// (what a client sent while the server was silent is recorded too).
    Drain(Duration),
}

/// `S:` lines → a Send step with CRLF line ends.
pub fn s(lines: &str) -> Step {
    let mut out = Vec::new();
    for l in lines.lines().map(str::trim).filter(|l| !l.is_empty()) {
        out.extend_from_slice(l.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    Step::Send(out)
}

/// What the server saw.
#[derive(Default, Debug, Clone)]
pub struct Seen {
    /// Every line received, as text (lossy).
    pub lines: Vec<String>,
    /// The body received after DATA.
    pub body: String,
    /// Connections accepted.
    pub connections: usize,
    /// True when the script ran to its end.
    pub completed: bool,
    /// Connections whose script has ended (completed, failed or timed out).
    pub ended: usize,
    /// Fixture servers: each ended connection's result (how the client followed the
    /// fixture, its deviations), for assertion messages.
    pub results: Vec<String>,
}

/// A test server the probe is pointed at.
pub trait Listening {
    /// Its port on 127.0.0.1.
    fn port(&self) -> u16;
}

impl Listening for Server {
    fn port(&self) -> u16 {
        self.addr.port()
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A scripted server for one or more connections (each connection runs the next script).
pub struct Server {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Seen>>,
}

/// The test PKI, generated once per test (names localhost and 127.0.0.1).
pub fn pki() -> TestPki {
    TestPki::generate(&["localhost", "127.0.0.1"]).expect("test PKI")
}

impl Server {
    /// Starts a server that plays `scripts[i]` on the i-th connection. A script that
    /// starts with [`Step::StartTls`] is implicit TLS. `cert` picks the certificate.
    pub async fn start(pki: &TestPki, cert: ServerCert, scripts: Vec<Vec<Step>>) -> Server {
        Server::start_with_config(pki.server_config_for(cert).unwrap(), scripts).await
    }

    /// [`Server::start`] with any rustls server configuration (a hand-made certificate).
    pub async fn start_with_config(
        config: Arc<rustls::ServerConfig>,
        scripts: Vec<Vec<Step>>,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let seen2 = seen.clone();
        tokio::spawn(async move {
            for script in scripts {
                let Ok(Ok((tcp, _))) =
                    tokio::time::timeout(Duration::from_secs(60), listener.accept()).await
                else {
                    return;
                };
                seen2.lock().unwrap().connections += 1;
                let _ = tcp.set_nodelay(true);
                let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                let seen3 = seen2.clone();
                tokio::spawn(async move {
                    let stream: Box<dyn Io> = Box::new(tcp);
                    let _ = tokio::time::timeout(
                        Duration::from_secs(30),
                        play(stream, script, acceptor, seen3.clone()),
                    )
                    .await;
                    seen3.lock().unwrap().ended += 1;
                });
            }
        });
        Server { addr, seen }
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }

    /// What the server saw, once every accepted connection's script has ended (or after
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

async fn play(
    stream: Box<dyn Io>,
    script: Vec<Step>,
    acceptor: tokio_rustls::TlsAcceptor,
    seen: Arc<Mutex<Seen>>,
) {
    let mut reader = BufReader::new(stream);
    for step in script {
        match step {
            Step::Send(b) => {
                if reader.get_mut().write_all(&b).await.is_err() {
                    return;
                }
            }
            Step::Trickle(b, pause) => {
                for byte in b {
                    if reader.get_mut().write_all(&[byte]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(pause).await;
                }
            }
            Step::Sleep(d) => tokio::time::sleep(d).await,
            Step::Repeat(b, times) => {
                for _ in 0..times {
                    if reader.get_mut().write_all(&b).await.is_err() {
                        return;
                    }
                }
            }
            Step::Read => {
                let n = match reader.fill_buf().await {
                    Ok([]) | Err(_) => return,
                    Ok(b) => b.len(),
                };
                reader.consume(n);
            }
            Step::Drain(limit) => {
                let until = tokio::time::Instant::now() + limit;
                loop {
                    let mut line = Vec::new();
                    match tokio::time::timeout_at(until, reader.read_until(b'\n', &mut line)).await
                    {
                        Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                        Ok(Ok(_)) => {
                            let text = String::from_utf8_lossy(&line).trim_end().to_string();
                            seen.lock().unwrap().lines.push(text);
                        }
                    }
                }
            }
            Step::Expect(_) | Step::Any => {
                let mut line = Vec::new();
                match reader.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                seen.lock().unwrap().lines.push(text.clone());
                if let Step::Expect(prefix) = step {
                    if !text
                        .to_ascii_uppercase()
                        .starts_with(&prefix.to_ascii_uppercase())
                    {
                        let _ = reader.get_mut().write_all(b"500 unexpected\r\n").await;
                        return;
                    }
                }
            }
            Step::Body => {
                let mut body = String::new();
                loop {
                    let mut line = Vec::new();
                    match reader.read_until(b'\n', &mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if line == b".\r\n" {
                        break;
                    }
                    body.push_str(&String::from_utf8_lossy(&line));
                }
                seen.lock().unwrap().body = body;
            }
            Step::StartTls => {
                let inner = reader.into_inner();
                let tls = match acceptor.accept(UnboxIo(inner)).await {
                    Ok(t) => t,
                    Err(_) => return,
                };
                reader = BufReader::new(Box::new(tls));
            }
            Step::Close => return,
        }
    }
    seen.lock().unwrap().completed = true;
    // Keep the connection open briefly so the client's last read is not a reset.
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_millis(500),
        reader.read_until(b'\n', &mut rest),
    )
    .await;
}

/// Adapter: a boxed stream as a concrete type for the TLS acceptor.
struct UnboxIo(Box<dyn Io>);

impl AsyncRead for UnboxIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for UnboxIo {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut *self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

/// Writes the CA to a temp file and returns its path (kept alive by the TempDir).
pub fn ca_file(pki: &TestPki) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, pki.ca_pem()).unwrap();
    (dir, path)
}

/// Runs the smtprobe binary with arguments and environment; never inherits a password.
pub async fn smtprobe(args: Vec<String>, env: Vec<(&'static str, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smtprobe"));
        cmd.args(&args)
            .env_remove("SMTPROBE_PASSWORD")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    })
    .await
    .unwrap()
}

/// Arguments to check `localhost` through 127.0.0.1 on the server's port, trusting only
/// the web PKI roots.
pub fn args_without_ca(server: &impl Listening, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "check".into(),
        "localhost".into(),
        "--connect-to".into(),
        "127.0.0.1".into(),
        "--port".into(),
        server.port().to_string(),
        "--helo".into(),
        "client.test".into(),
        "--timeout".into(),
        "3".into(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// The usual arguments: [`args_without_ca`] plus `--ca-file` for the test CA.
pub fn args(server: &impl Listening, ca: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut v = args_without_ca(server, &["--ca-file", &ca.display().to_string()]);
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Replaces the `--timeout` value in an argument list.
pub fn set_timeout(args: &mut [String], secs: &str) {
    if let Some(i) = args.iter().position(|x| x == "--timeout") {
        args[i + 1] = secs.into();
    }
}

/// An implicit-TLS server that greets, offers AUTH PLAIN, and expects QUIT (a
/// credential-free check runs through it).
pub fn implicit_greeting_then_quit() -> Vec<Step> {
    vec![
        Step::StartTls,
        s("220 mx ESMTP"),
        Step::Expect("EHLO"),
        s("250-mx
           250 AUTH PLAIN"),
        Step::Expect("QUIT"),
        s("221 bye"),
    ]
}

/// Parses stdout as the JSON report.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A Gmail-like STARTTLS conversation up to the second EHLO's reply.
pub fn gmail_starttls_prefix() -> Vec<Step> {
    vec![
        s("220 smtp.gmail.com ESMTP t66sm6271302pjb.45 - gsmtp"),
        Step::Expect("EHLO client.test"),
        s("250-smtp.gmail.com at your service, [127.0.0.1]
           250-SIZE 35882577
           250-8BITMIME
           250-STARTTLS
           250-ENHANCEDSTATUSCODES
           250-PIPELINING
           250-CHUNKING
           250 SMTPUTF8"),
        Step::Expect("STARTTLS"),
        s("220 2.0.0 Ready to start TLS"),
        Step::StartTls,
        Step::Expect("EHLO client.test"),
        s("250-smtp.gmail.com at your service, [127.0.0.1]
           250-SIZE 35882577
           250-8BITMIME
           250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH
           250-ENHANCEDSTATUSCODES
           250-PIPELINING
           250-CHUNKING
           250 SMTPUTF8"),
    ]
}
