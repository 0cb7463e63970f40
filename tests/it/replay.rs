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

    /// Connected, greeting read, `EHLO client.example` answered.
    async fn greeted(addr: std::net::SocketAddr) -> Client {
        let mut c = Client::connect(addr).await;
        c.expect("220").await;
        c.send("EHLO client.example").await;
        c.expect("250").await;
        c
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
        let mut c = Client::greeted(addr).await;
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
        let mut c = Client::greeted(addr).await;
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
        let mut c = Client::greeted(addr).await;
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

// ---- `smtprobe serve` as a server, through the CLI contract -------------------------

/// A running `smtprobe serve`: its stdout lines as they come, its exit.
struct Serve {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    addr: std::net::SocketAddr,
    ca: Option<Arc<rustls::ClientConfig>>,
}

fn fixture_path(name: &str) -> String {
    format!("{}/fixtures/{name}.fixture", env!("CARGO_MANIFEST_DIR"))
}

/// A client configuration trusting exactly the CA in `pem`.
fn trusting(pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

impl Serve {
    /// Starts `smtprobe serve PATH --listen 127.0.0.1:0 ARGS…` and reads the first line.
    async fn start(path: &str, args: &[&str], json: bool) -> Serve {
        use tokio::io::AsyncBufReadExt as _;
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_smtprobe"));
        cmd.args(["serve", path, "--listen", "127.0.0.1:0"])
            .args(args);
        let with_ca = !args.contains(&"--cert");
        if with_ca {
            cmd.args(["--ca-out", ca.to_str().unwrap()]);
        }
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("serve starts")
            .unwrap()
            .expect("a first line");
        let addr = if json {
            let v: serde_json::Value = serde_json::from_str(&first).unwrap();
            assert_eq!(v["event"], "listening", "{first}");
            assert!(
                first.starts_with(r#"{"event":"listening","address":""#),
                "{first}"
            );
            v["address"].as_str().unwrap().parse().unwrap()
        } else {
            first
                .strip_prefix("listening on ")
                .unwrap_or_else(|| panic!("first line: {first}"))
                .parse()
                .unwrap()
        };
        let ca = with_ca.then(|| trusting(&std::fs::read_to_string(&ca).unwrap()));
        std::mem::forget(dir);
        Serve {
            child,
            lines,
            addr,
            ca,
        }
    }

    async fn line(&mut self) -> String {
        timeout(Duration::from_secs(20), self.lines.next_line())
            .await
            .expect("a line in time")
            .unwrap()
            .expect("a line")
    }

    async fn json(&mut self) -> serde_json::Value {
        let l = self.line().await;
        serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
    }

    /// Exit code and stderr.
    async fn exit(mut self) -> (Option<i32>, String) {
        let mut err = String::new();
        let mut stderr = self.child.stderr.take().unwrap();
        let status = timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("serve exits")
            .unwrap();
        let _ = stderr.read_to_string(&mut err).await;
        (status.code(), err)
    }

    /// Connect, EHLO, STARTTLS, then the TLS handshake verifying `name`.
    async fn handshake_as(
        &self,
        name: &str,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<Box<dyn Stream>>> {
        let mut c = Client::greeted(self.addr).await;
        c.send("STARTTLS").await;
        c.expect("220").await;
        TlsConnector::from(self.ca.clone().unwrap())
            .connect(ServerName::try_from(name.to_string()).unwrap(), c.io)
            .await
    }

    /// Connect, EHLO, STARTTLS, EHLO: a client in TLS, ready for AUTH.
    async fn client_in_tls(&self) -> Client {
        let mut c = Client::greeted(self.addr).await;
        c.send("STARTTLS").await;
        c.expect("220").await;
        let mut c = c.tls(self.ca.clone().unwrap()).await;
        c.send("EHLO client.example").await;
        c.expect("250").await;
        c
    }
}

#[tokio::test]
async fn serve_once_json_smtplib_sequence_gets_534_twice_and_passes() {
    let mut s = Serve::start(
        &fixture_path("gmail-587-app-password-required"),
        &["--once"],
        true,
    )
    .await;
    let mut c = s.client_in_tls().await;
    c.send(&format!("AUTH PLAIN {}", plain("me@example.org", "pw")))
        .await;
    let r = c.expect("534").await;
    assert!(
        r[0].contains("Application-specific password required"),
        "{r:?}"
    );
    // smtplib's retry with LOGIN: the same refusal, never a 503.
    c.send(&format!("AUTH LOGIN {}", B64.encode("me@example.org")))
        .await;
    c.expect("334").await;
    c.send(&B64.encode("pw")).await;
    c.expect("534").await;
    drop(c); // closes without QUIT: normal
    let v = s.json().await;
    assert_eq!(v["event"], "connection");
    assert_eq!(v["scenario"], "gmail-587-app-password-required");
    assert_eq!(v["expect"], "auth auth.app-password-required");
    assert_eq!(v["result_delivered"], true);
    assert_eq!(v["passed"], true);
    assert_eq!(v["findings"][0]["rule"], "auth-after-permanent-failure");
    assert!(v["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(s.exit().await.0, Some(0));
}

#[tokio::test]
async fn fail_on_findings_and_security_rules_decide_the_exit_code() {
    // A finding fails only with --fail-on-findings.
    let s = Serve::start(
        &fixture_path("gmail-587-bad-credentials"),
        &["--once", "--fail-on-findings"],
        false,
    )
    .await;
    let mut c = s.client_in_tls().await;
    for _ in 0..2 {
        c.send(&format!("AUTH PLAIN {}", plain("a@b", "pw"))).await;
        c.expect("535").await;
    }
    drop(c);
    assert_eq!(s.exit().await.0, Some(1));
    // A security rule fails without it: credentials over a stripped STARTTLS.
    let mut s = Serve::start(
        &fixture_path("gmail-587-starttls-stripped"),
        &["--once"],
        false,
    )
    .await;
    let mut c = Client::greeted(s.addr).await;
    c.send(&format!("AUTH PLAIN {}", plain("a@b", "pw"))).await;
    c.expect("502").await;
    drop(c);
    let summary = s.line().await;
    assert!(
        summary.contains("FAILED") && summary.contains("security auth-without-tls"),
        "{summary}"
    );
    assert_eq!(s.exit().await.0, Some(1));
}

#[tokio::test]
async fn accept_timeout_exits_1_with_a_message() {
    let s = Serve::start(
        &fixture_path("gmail-587-plain-auth-ok"),
        &["--once", "--accept-timeout", "0.3"],
        false,
    )
    .await;
    let (code, err) = s.exit().await;
    assert_eq!(code, Some(1));
    assert!(err.contains("no client connected within 0.3 s"), "{err}");
}

#[tokio::test]
async fn unplayable_fixtures_are_refused_at_start_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let head =
        "# name: bad\n# story: s\n# host: h\n# port: 587\n# mode: starttls\n# expect: ok\n\n";
    for (body, want) in [
        ("S: 220 h\nX: what\n", "fixture line 9: a step starts with"),
        (
            "S: 220 h\nC: EHLO {any}\nS: 25O oops\n",
            "fixture line 10: not a valid reply line",
        ),
        (
            "S: 220 h\nC: EHLO {any}\nS: 250 STARTTLS\nC: STARTTLS\nS: 220 go\n* TLS\n* TLS\n",
            "fixture line 14",
        ),
        (
            "C: EHLO {any}\nS: 250 h\n",
            "fixture line 8: the server must speak first",
        ),
    ] {
        let p = dir.path().join("bad.fixture");
        std::fs::write(&p, format!("{head}{body}")).unwrap();
        let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_smtprobe"))
            .args([
                "serve",
                p.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--once",
            ])
            .output()
            .await
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{body}: {err}");
        assert!(
            err.contains(&format!("{}: {want}", p.display())),
            "{body}: {err}"
        );
        assert!(o.stdout.is_empty(), "nothing on stdout before listening");
    }
}

#[tokio::test]
async fn folder_mode_user_chooses_the_scenario_and_a_sequence_retries() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "gmail-587-plain-send-ok",
        "gmail-587-app-password-required",
        "gmail-587-421-at-mail",
        "gmail-465-login-ok",
    ] {
        std::fs::copy(
            fixture_path(name),
            dir.path().join(format!("{name}.fixture")),
        )
        .unwrap();
    }
    std::fs::write(
        dir.path().join("retry.sequence"),
        "# 421 first, success on the retry\ngmail-587-421-at-mail\ngmail-587-plain-send-ok\n",
    )
    .unwrap();
    let mut s = Serve::start(dir.path().to_str().unwrap(), &["--connections", "4"], true).await;
    // 1: the user's local part names the scenario.
    let mut c = s.client_in_tls().await;
    c.send(&format!(
        "AUTH PLAIN {}",
        plain("app-password-required@example.com", "pw")
    ))
    .await;
    c.expect("534").await;
    drop(c);
    let v = s.json().await;
    assert_eq!(v["scenario"], "gmail-587-app-password-required");
    assert_eq!(v["passed"], true);
    // 2, 3: a sequence: 421 at MAIL, then success.
    for (want, scenario) in [
        ("421", "gmail-587-421-at-mail"),
        ("250", "gmail-587-plain-send-ok"),
    ] {
        let mut c = s.client_in_tls().await;
        c.send(&format!("AUTH PLAIN {}", plain("retry@example.com", "pw")))
            .await;
        c.expect("235").await;
        c.send("MAIL FROM:<retry@example.com>").await;
        c.expect(want).await;
        if want == "250" {
            c.send("RCPT TO:<x@example.org>").await;
            c.expect("250").await;
            c.send("DATA").await;
            c.expect("354").await;
            c.send("Subject: retry\r\n\r\nhello\r\n.").await;
            c.expect("250").await;
            c.send("QUIT").await;
            c.expect("221").await;
        }
        drop(c);
        let v = s.json().await;
        assert_eq!(v["scenario"], scenario);
        assert_eq!(v["passed"], true, "{v}");
    }
    // 4: an unknown user keeps the default scenario (first `ok` STARTTLS fixture).
    let mut c = s.client_in_tls().await;
    c.send(&format!("AUTH PLAIN {}", plain("you@gmail.com", "pw")))
        .await;
    c.expect("235").await;
    drop(c);
    let v = s.json().await;
    assert_eq!(v["scenario"], "gmail-587-plain-send-ok");
    assert_eq!(v["result_delivered"], false, "it never sent the message");
    assert_eq!(s.exit().await.0, Some(1));
}

#[tokio::test]
async fn sigterm_prints_a_summary_and_exits_nonzero_after_a_failure() {
    let mut s = Serve::start(&fixture_path("gmail-587-plain-auth-ok"), &[], true).await;
    // Connects and leaves at once: the result (235) was never delivered.
    let mut c = Client::connect(s.addr).await;
    c.expect("220").await;
    drop(c);
    let v = s.json().await;
    assert_eq!(v["passed"], false);
    let pid = s.child.id().unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let v = s.json().await;
    assert_eq!(v["event"], "summary", "{v}");
    assert_eq!(
        (v["connections"].as_u64(), v["failed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(s.exit().await.0, Some(1));
}

#[tokio::test]
async fn bad_clients_get_bounded_answers_and_others_are_still_served() {
    let mut s = Serve::start(
        &fixture_path("gmail-587-plain-auth-ok"),
        &["--connections", "4", "--timeout", "1"],
        true,
    )
    .await;
    let addr = s.addr;
    let garbage = async move {
        let mut c = Client::connect(addr).await;
        c.expect("220").await;
        for _ in 0..9 {
            c.io.write_all(b"\x00\xff\x1b[31m garbage\r\n")
                .await
                .unwrap();
            c.expect("500").await;
        }
        c.io.write_all(b"more garbage\r\n").await.unwrap();
        c.expect("421").await;
    };
    let endless = async move {
        let mut c = Client::connect(addr).await;
        c.expect("220").await;
        let _ = c.io.write_all(&vec![b'A'; 40_000]).await;
        c.expect("500").await;
        assert_eq!(c.reply().await, None, "closed after the endless line");
    };
    let silent = async move {
        let mut c = Client::connect(addr).await;
        c.expect("220").await;
        let r = c.expect("421").await;
        assert!(r[0].contains("4.4.2"), "{r:?}");
    };
    tokio::join!(garbage, endless, silent);
    // And a good client is served as usual.
    let mut c = s.client_in_tls().await;
    c.send(&format!("AUTH PLAIN {}", plain("a@b", "pw"))).await;
    c.expect("235").await;
    c.send("QUIT").await;
    c.expect("221").await;
    let mut passed = 0;
    for _ in 0..4 {
        let v = s.json().await;
        passed += usize::from(v["passed"] == true);
        // Garbage is never echoed raw (escaped at capture).
        assert!(!v.to_string().contains('\x1b'));
    }
    assert_eq!(passed, 1);
    assert_eq!(s.exit().await.0, Some(1));
}

#[tokio::test]
async fn state_dir_keeps_the_ca_and_cert_name_is_in_the_certificate() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap().to_string();
    let mut pems = Vec::new();
    for _ in 0..2 {
        let s = Serve::start(
            &fixture_path("gmail-587-plain-auth-ok"),
            &[
                "--once",
                "--state-dir",
                &dir,
                "--cert-name",
                "mail.app.test",
            ],
            false,
        )
        .await;
        pems.push(std::fs::read_to_string(state.path().join("ca.pem")).unwrap());
        // The app's configured host name verifies.
        let tls = s.handshake_as("mail.app.test").await;
        assert!(tls.is_ok(), "{:?}", tls.err());
        drop(tls);
        let _ = s.exit().await;
    }
    assert_eq!(pems[0], pems[1], "the CA is the same across runs");
}

#[tokio::test]
async fn a_client_that_verifies_refuses_a_wrong_name_certificate_and_passes() {
    let s = Serve::start(
        &fixture_path("gmail-587-plain-auth-ok"),
        &["--once", "--certificate", "wrong-name"],
        false,
    )
    .await;
    let tls = s.handshake_as("localhost").await;
    assert!(tls.is_err());
    let (code, _) = s.exit().await;
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn strict_quit_where_auth_is_expected_is_shown_as_quit() {
    let srv = server(STARTTLS_FIXTURE, ReplayOptions::default()).await;
    let r = run(srv, |addr, cfg| async move {
        let mut c = Client::greeted(addr).await;
        c.send("STARTTLS").await;
        c.expect("220").await;
        let mut c = c.tls(cfg).await;
        c.send("EHLO client.example").await;
        c.expect("250").await;
        c.send("QUIT").await;
        c.expect("221").await;
    })
    .await;
    let all = r.to_string();
    assert!(
        all.contains("got `QUIT`") && !all.contains("<redacted: 4 bytes>"),
        "{all}"
    );
}

#[tokio::test]
async fn a_trickled_greeting_arrives_whole() {
    let text = "# name: slow
# story: a server that sends its greeting byte by byte
# host: smtp.example
# port: 25
# mode: none
# expect: ok

~ trickle 2ms
S: 220 smtp.example ESMTP
C: QUIT
S: 221 bye
";
    for strict in [true, false] {
        let f = Fixture::parse(text).unwrap();
        let opts = ReplayOptions {
            strict,
            ..ReplayOptions::default()
        };
        let srv = ReplayServer::bind(f, "127.0.0.1:0".parse().unwrap(), opts)
            .await
            .unwrap();
        let r = run(srv, |addr, _| async move {
            let mut c = Client::connect(addr).await;
            let g = c.expect("220").await;
            assert_eq!(g, ["220 smtp.example ESMTP"]);
            c.send("QUIT").await;
            c.expect("221").await;
        })
        .await;
        assert!(r.passed, "{r}");
    }
}

/// DER as PEM (`label` e.g. `CERTIFICATE`).
fn pem(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[tokio::test]
async fn serve_presents_the_users_own_certificate() {
    let pki = smtprobe::replay::TestPki::generate(&["mail.own.test"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let chain: String = pki
        .server_chain()
        .iter()
        .map(|c| pem("CERTIFICATE", c))
        .collect();
    std::fs::write(&cert, chain).unwrap();
    std::fs::write(&key, pem("PRIVATE KEY", pki.server_key().secret_der())).unwrap();
    let mut s = Serve::start(
        &fixture_path("gmail-587-plain-auth-ok"),
        &[
            "--once",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
        false,
    )
    .await;
    s.ca = Some(trusting(&pki.ca_pem()));
    let tls = s.handshake_as("mail.own.test").await;
    assert!(tls.is_ok(), "{:?}", tls.err());
    drop(tls);
    let _ = s.exit().await;
    // A key that does not parse is refused at start with the file named.
    std::fs::write(&key, "not a key").unwrap();
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_smtprobe"))
        .args([
            "serve",
            &fixture_path("gmail-587-plain-auth-ok"),
            "--listen",
            "127.0.0.1:0",
        ])
        .args([
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ])
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("key.pem"), "{err}");
}
