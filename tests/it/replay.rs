//! The replay server driven by a tiny scripted client (raw tokio TCP + tokio-rustls
//! trusting the generated CA). Loopback only.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rustls::pki_types::ServerName;
use smtprobe::fixture::Fixture;
use smtprobe::protocol::ReplyParser;
use smtprobe::replay::{ConnectionResult, ReplayOptions, ReplayServer};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

const STARTTLS_FIXTURE: &str = "# name: t-starttls
# story: STARTTLS, AUTH PLAIN, one message
# host: smtp.example
# port: 587
# mode: starttls
# user: you@example.com
# expect: ok

S: 220 smtp.example ESMTP
C: EHLO {any}
S: 250-smtp.example
S: 250-PIPELINING
S: 250 STARTTLS
C: STARTTLS
S: 220 2.0.0 Ready to start TLS
* TLS
C: EHLO {any}
S: 250-smtp.example
S: 250 AUTH PLAIN LOGIN
C: AUTH PLAIN <redacted: user you@example.com>
S: 235 2.7.0 Accepted
C: MAIL FROM:<you@example.com>{any}
S: 250 2.1.0 OK
C: RCPT TO:<friend@example.org>
S: 250 2.1.5 OK
C: DATA
S: 354 Go ahead
C: <message>
S: 250 2.0.0 OK queued
C: QUIT
S: 221 2.0.0 closing connection
";

const IMPLICIT_FIXTURE: &str = "# name: t-implicit
# story: implicit TLS, AUTH LOGIN
# host: smtp.example
# port: 465
# mode: implicit
# user: you@example.com
# expect: ok

* TLS
S: 220 smtp.example ESMTP
C: EHLO {any}
S: 250-smtp.example
S: 250 AUTH LOGIN PLAIN
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: <redacted username>
S: 334 UGFzc3dvcmQ6
C: <redacted password>
S: 235 2.7.0 Accepted
C: QUIT
S: 221 bye
";

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A scripted client: sends lines, reads whole replies with the project's parser.
struct Client {
    io: Box<dyn Stream>,
    parser: ReplyParser,
}

impl Client {
    async fn connect(addr: std::net::SocketAddr) -> Client {
        let tcp = TcpStream::connect(addr).await.unwrap();
        Client {
            io: Box::new(tcp),
            parser: ReplyParser::new(),
        }
    }

    async fn send(&mut self, line: &str) {
        self.io
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
    }

    /// The next reply's lines; `None` at end of stream.
    async fn reply(&mut self) -> Option<Vec<String>> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(r) = self.parser.next_reply() {
                return Some(r.unwrap().display_lines());
            }
            let n = timeout(Duration::from_secs(10), self.io.read(&mut buf))
                .await
                .expect("server answered in time")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.parser.push(&buf[..n]);
        }
    }

    async fn expect(&mut self, code: &str) -> Vec<String> {
        let r = self.reply().await.expect("a reply");
        assert!(
            r.last().unwrap().starts_with(code),
            "want {code}, got {r:?}"
        );
        r
    }

    async fn tls(self, config: Arc<rustls::ClientConfig>) -> Client {
        assert!(self.parser.is_idle(), "nothing may be buffered before TLS");
        // The boxed stream is a TcpStream here; rebuild from a fresh box-free path.
        let Client { io, .. } = self;
        let tls = TlsConnector::from(config)
            .connect(ServerName::try_from("localhost").unwrap(), io)
            .await
            .unwrap();
        Client {
            io: Box::new(tls),
            parser: ReplyParser::new(),
        }
    }
}

/// A strict-mode server (the lock-step comparison these tests pin).
async fn server(text: &str, opts: ReplayOptions) -> ReplayServer {
    let f = Fixture::parse(text).unwrap();
    let opts = ReplayOptions {
        strict: true,
        ..opts
    };
    ReplayServer::bind(f, "127.0.0.1:0".parse().unwrap(), opts)
        .await
        .unwrap()
}

async fn run<F, Fut>(srv: ReplayServer, client: F) -> ConnectionResult
where
    F: FnOnce(std::net::SocketAddr, Arc<rustls::ClientConfig>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let addr = srv.local_addr().unwrap();
    let cfg = srv.pki().client_config();
    let (result, ()) = tokio::join!(srv.serve_one(), client(addr, cfg));
    result.unwrap()
}

fn plain(user: &str, pw: &str) -> String {
    B64.encode(format!("\0{user}\0{pw}"))
}

#[tokio::test]
async fn starttls_client_that_follows_the_fixture() {
    let srv = server(STARTTLS_FIXTURE, ReplayOptions::default()).await;
    assert!(srv.ca_pem().contains("BEGIN CERTIFICATE"));
    let r = run(srv, |addr, cfg| async move {
        let mut c = Client::connect(addr).await;
        c.expect("220").await;
        c.send("EHLO client.example").await;
        c.expect("250").await;
        c.send("STARTTLS").await;
        c.expect("220").await;
        let mut c = c.tls(cfg).await;
        c.send("EHLO client.example").await;
        let caps = c.expect("250").await;
        assert!(caps.iter().any(|l| l.contains("AUTH")));
        c.send(&format!(
            "AUTH PLAIN {}",
            plain("you@example.com", "any password")
        ))
        .await;
        c.expect("235").await;
        // Pipelined (RFC 2920): MAIL, RCPT and DATA in one write.
        c.send("MAIL FROM:<you@example.com> SIZE=30\r\nRCPT TO:<friend@example.org>\r\nDATA")
            .await;
        c.expect("250").await;
        c.expect("250").await;
        c.expect("354").await;
        c.send("Subject: hi\r\n\r\n..dot-stuffed\r\n.").await;
        c.expect("250").await;
        c.send("QUIT").await;
        c.expect("221").await;
        assert_eq!(
            c.reply().await,
            None,
            "the server closes after the last line"
        );
    })
    .await;
    assert!(r.followed, "{r}");
    assert!(r.deviations.is_empty());
}

#[tokio::test]
async fn implicit_tls_login_that_follows_the_fixture() {
    let srv = server(IMPLICIT_FIXTURE, ReplayOptions::default()).await;
    let r = run(srv, |addr, cfg| async move {
        let c = Client::connect(addr).await;
        let mut c = c.tls(cfg).await;
        c.expect("220").await;
        c.send("EHLO x").await;
        c.expect("250").await;
        c.send("AUTH LOGIN").await;
        c.expect("334").await;
        c.send(&B64.encode("you@example.com")).await;
        c.expect("334").await;
        c.send(&B64.encode("secret-sentinel")).await;
        c.expect("235").await;
        c.send("QUIT").await;
        c.expect("221").await;
    })
    .await;
    assert!(r.followed, "{r}");
}

#[tokio::test]
async fn deviating_client_gets_503_and_the_line_is_named() {
    let srv = server(STARTTLS_FIXTURE, ReplayOptions::default()).await;
    let r = run(srv, |addr, _| async move {
        let mut c = Client::connect(addr).await;
        c.expect("220").await;
        c.send("EHLO client.example").await;
        c.expect("250").await;
        // Skips STARTTLS: a real server answers 503 (or 530) to MAIL here.
        c.send("MAIL FROM:<you@example.com>").await;
        let r = c.expect("503").await;
        assert!(
            r[0].contains("5.5.1") && r[0].contains("fixture line 14"),
            "{r:?}"
        );
        c.send("XYZZY").await;
        c.expect("500").await;
        c.send("QUIT").await;
        c.expect("221").await;
    })
    .await;
    assert!(!r.followed);
    assert_eq!(r.deviations.len(), 3, "{r}");
    assert_eq!(
        r.deviations[0].to_string(),
        "fixture line 14: expected `STARTTLS`, got `MAIL FROM:<you@example.com>` \
         (answered `503 5.5.1 Bad sequence of commands (smtprobe replay: see fixture line 14)`)"
    );
}

#[tokio::test]
async fn wrong_user_gets_535_and_credentials_are_never_shown() {
    let srv = server(IMPLICIT_FIXTURE, ReplayOptions::default()).await;
    let r = run(srv, |addr, cfg| async move {
        let mut c = Client::connect(addr).await.tls(cfg).await;
        c.expect("220").await;
        c.send("EHLO x").await;
        c.expect("250").await;
        c.send(&format!(
            "AUTH PLAIN {}",
            plain("me@example.com", "hunter2-sentinel")
        ))
        .await;
        c.expect("501").await; // LOGIN expected, PLAIN sent: other arguments
        c.send("AUTH LOGIN").await;
        c.expect("334").await;
        c.send(&B64.encode("other@example.com")).await;
        c.expect("535").await;
    })
    .await;
    assert!(!r.followed);
    let all = r.to_string();
    assert!(
        !all.contains("hunter2") && !all.contains(&B64.encode("other@example.com")),
        "{all}"
    );
    assert!(all.contains("got `AUTH PLAIN <redacted>`"), "{all}");
    assert!(all.contains("got `<redacted: 24 bytes>`"), "{all}");
}

#[tokio::test]
async fn injected_reply_arrives_in_the_same_write_as_the_220() {
    let text = "# name: inj
# story: injection
# host: smtp.example
# port: 587
# mode: starttls
# expect: starttls starttls.injection

S: 220 smtp.example ESMTP
C: EHLO {any}
S: 250-smtp.example
S: 250 STARTTLS
C: STARTTLS
S: 220 2.0.0 Ready to start TLS
S: 250 injected
";
    let srv = server(text, ReplayOptions::default()).await;
    let r = run(srv, |addr, _| async move {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = tcp.read(&mut buf).await.unwrap();
        tcp.write_all(b"EHLO x\r\n").await.unwrap();
        let mut got = Vec::new();
        while !got.ends_with(b"250 STARTTLS\r\n") {
            let n = tcp.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        tcp.write_all(b"STARTTLS\r\n").await.unwrap();
        // Both replies arrive before the client could start TLS (they are written in
        // one write; the script's unit test checks the single write itself).
        let mut got = Vec::new();
        while got.len() < 44 {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"220 2.0.0 Ready to start TLS\r\n250 injected\r\n");
    })
    .await;
    assert!(r.followed, "{r}");
}

#[tokio::test]
async fn silent_client_is_dropped_at_the_deadline() {
    let opts = ReplayOptions {
        read_timeout: Duration::from_millis(200),
        ..ReplayOptions::default()
    };
    let srv = server(STARTTLS_FIXTURE, opts).await;
    let r = run(srv, |addr, _| async move {
        let mut c = Client::connect(addr).await;
        c.expect("220").await;
        let r = c.expect("421").await;
        assert!(r[0].contains("4.4.2"));
    })
    .await;
    assert!(!r.followed);
    assert!(r.deviations[0].got.contains("nothing for 0.2 s"), "{r}");
    assert_eq!(r.deviations[0].line, 10);
}

#[tokio::test]
async fn client_that_quits_early_did_not_follow() {
    let srv = server(STARTTLS_FIXTURE, ReplayOptions::default()).await;
    let r = run(srv, |addr, _| async move {
        let mut c = Client::connect(addr).await;
        c.expect("220").await;
        c.send("EHLO client.example").await;
        c.expect("250").await;
        c.send("QUIT").await;
        c.expect("221").await;
    })
    .await;
    assert!(!r.followed);
    assert_eq!(r.deviations.len(), 1);
    assert!(
        r.to_string().contains("expected `STARTTLS`, got `QUIT`"),
        "{r}"
    );
}

#[tokio::test]
async fn delay_is_added_before_each_reply() {
    let opts = ReplayOptions {
        delay: Duration::from_millis(100),
        ..ReplayOptions::default()
    };
    let srv = server(STARTTLS_FIXTURE, opts).await;
    let start = std::time::Instant::now();
    run(srv, |addr, _| async move {
        let mut c = Client::connect(addr).await;
        c.expect("220").await;
    })
    .await;
    assert!(start.elapsed() >= Duration::from_millis(100));
}
