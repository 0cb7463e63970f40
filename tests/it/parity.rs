//! Issue 13: what a swaks/curl user reaches for, against real parts on loopback: a
//! real SOCKS5 server (microsocks), a real HTTP CONNECT proxy (tinyproxy), hostile
//! proxies, a SCRAM server whose signature does not verify, password commands that
//! fail, hang or print nothing, and SMTPUTF8 refused before sending.
//!
//! microsocks and tinyproxy are started by the test on a free loopback port and killed
//! when it ends. Without them the proxy tests say "skipped"; with `CI` set they fail.

use crate::common::*;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A daemon this test started; killed (by its own pid) when dropped.
struct Daemon {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The program's path, or `None` (skipped) — a failure under CI.
fn need(program: &str, test: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: CI is set but {program} is not installed (.ci/apt-packages.txt lists it)"
        );
        eprintln!("{test}: skipped: {program} is not installed");
    }
    found
}

fn wait_listening(port: u16, child: &mut Child, what: &str) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{what} is not listening on 127.0.0.1:{port} after 5 s");
}

/// Starts `cmd` (stdio detached) and waits until it listens on `port`.
fn spawn(mut cmd: Command, port: u16, dir: tempfile::TempDir, what: &str) -> Daemon {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(port, &mut child, what);
    Daemon {
        child,
        port,
        _dir: dir,
    }
}

fn microsocks(bin: &std::path::Path, auth: Option<(&str, &str)>) -> Daemon {
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
    if let Some((u, p)) = auth {
        cmd.args(["-u", u, "-P", p]);
    }
    spawn(cmd, port, tempfile::tempdir().unwrap(), "microsocks")
}

fn tinyproxy(bin: &std::path::Path, allowed_port: u16, auth: Option<(&str, &str)>) -> Daemon {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("tinyproxy.conf");
    let mut text = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 10\nMaxClients 20\nLogLevel Error\n\
         LogFile \"{}\"\nConnectPort {allowed_port}\n",
        dir.path().join("log").display()
    );
    if let Some((u, p)) = auth {
        text.push_str(&format!("BasicAuth {u} {p}\n"));
    }
    std::fs::write(&conf, text).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("-d").arg("-c").arg(&conf);
    spawn(cmd, port, dir, "tinyproxy")
}

/// A plain SMTP server that greets and takes QUIT (through the tunnel).
async fn smtp_server() -> FixtureServer {
    let steps = "S: 220 mx.test ESMTP
                 C: EHLO {any}
                 S: 250-mx.test
                 S: 250 8BITMIME
                 C: QUIT
                 S: 221 bye";
    FixtureServer::start(&[steps, steps]).await
}

async fn through(proxy: &str, port: u16, extra: &[&str]) -> serde_json::Value {
    let mut args: Vec<String> = [
        "check",
        "localhost",
        "--port",
        &port.to_string(),
        "--tls",
        "none",
        "--helo",
        "client.test",
        "--timeout",
        "2",
        "--json",
        "--proxy",
        proxy,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = smtprobe(args, vec![]).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !text.contains("s3cret-proxy-pw")
            && !String::from_utf8_lossy(&out.stderr).contains("s3cret-proxy-pw"),
        "proxy password leaked"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn code(j: &serde_json::Value) -> &str {
    j["diagnosis"]["code"].as_str().unwrap_or_default()
}

fn transcript(j: &serde_json::Value) -> String {
    j["transcript"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["text"].as_str().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn socks5_proxy_microsocks_with_user_password_and_remote_dns() {
    let Some(bin) = need("microsocks", "socks5_proxy_microsocks") else {
        return;
    };
    let server = smtp_server().await;
    let proxy = microsocks(&bin, Some(("alice", "s3cret-proxy-pw")));
    // "localhost" is sent to the proxy as a name (RFC 1928 ATYP 3): microsocks resolves.
    let j = through(
        &format!("socks5://alice:s3cret-proxy-pw@127.0.0.1:{}", proxy.port),
        server.addr.port(),
        &[],
    )
    .await;
    assert_eq!(code(&j), "ok", "{j:#}");
    let t = transcript(&j);
    assert!(t.contains("localhost is resolved by the proxy"), "{t}");
    assert!(
        t.contains("the SOCKS5 proxy connected to localhost:"),
        "{t}"
    );
    assert!(t.contains("220 mx.test ESMTP"), "{t}");
    // Wrong password, and no credentials for a proxy that wants them.
    for url in [
        format!("socks5://alice:nope@127.0.0.1:{}", proxy.port),
        format!("socks5://127.0.0.1:{}", proxy.port),
    ] {
        let j = through(&url, server.addr.port(), &[]).await;
        assert_eq!(
            (code(&j), j["failed_stage"].as_str()),
            ("proxy.auth-failed", Some("proxy")),
            "{j:#}"
        );
    }
}

#[tokio::test]
async fn socks5_destination_refused_and_proxy_unreachable() {
    let Some(bin) = need("microsocks", "socks5_destination_refused") else {
        return;
    };
    let proxy = microsocks(&bin, None);
    let closed = free_port();
    let j = through(&format!("socks5://127.0.0.1:{}", proxy.port), closed, &[]).await;
    assert_eq!(code(&j), "proxy.destination-refused", "{j:#}");
    let j = through(&format!("socks5://127.0.0.1:{}", free_port()), 25, &[]).await;
    assert_eq!(code(&j), "proxy.unreachable", "{j:#}");
    // ALL_PROXY is used when --proxy is not given.
    let server = smtp_server().await;
    let out = smtprobe(
        vec![
            "check".into(),
            "localhost".into(),
            "--port".into(),
            server.addr.port().to_string(),
            "--tls".into(),
            "none".into(),
            "--timeout".into(),
            "2".into(),
            "--json".into(),
        ],
        vec![("ALL_PROXY", format!("socks5h://127.0.0.1:{}", proxy.port))],
    )
    .await;
    let j = json(&out);
    assert_eq!(code(&j), "ok", "{j:#}");
    assert!(transcript(&j).contains("SOCKS5 proxy connected"));
}

#[tokio::test]
async fn http_connect_proxy_tinyproxy() {
    let Some(bin) = need("tinyproxy", "http_connect_proxy_tinyproxy") else {
        return;
    };
    let server = smtp_server().await;
    let proxy = tinyproxy(&bin, server.addr.port(), Some(("bob", "s3cret-proxy-pw")));
    let url = format!("http://bob:s3cret-proxy-pw@127.0.0.1:{}", proxy.port);
    let j = through(&url, server.addr.port(), &["--connect-to", "127.0.0.1"]).await;
    assert_eq!(code(&j), "ok", "{j:#}");
    assert!(transcript(&j).contains("the HTTP proxy opened the tunnel: HTTP/1."));
    // 407 without credentials; 403 for a port outside ConnectPort.
    let j = through(
        &format!("http://127.0.0.1:{}", proxy.port),
        server.addr.port(),
        &["--connect-to", "127.0.0.1"],
    )
    .await;
    assert_eq!(code(&j), "proxy.auth-failed", "{j:#}");
    let j = through(&url, free_port(), &["--connect-to", "127.0.0.1"]).await;
    assert_eq!(code(&j), "proxy.destination-refused", "{j:#}");
    assert!(
        j["diagnosis"]["evidence"]
            .as_str()
            .unwrap_or_default()
            .contains("403"),
        "{j:#}"
    );
}

/// A "proxy" that answers with `reply` (or nothing) to whatever it receives.
async fn fake_proxy(reply: &'static [u8]) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut b = [0u8; 256];
                let _ = c.read(&mut b).await;
                if !reply.is_empty() {
                    let _ = c.write_all(reply).await;
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn hostile_proxies_garbage_or_silence() {
    for (scheme, reply) in [
        ("socks5", &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..]),
        ("http", &b"\x05\x00"[..]),
        ("http", &b"220 mx.test ESMTP (not a proxy)\r\n"[..]),
        ("socks5", &b""[..]),
        ("http", &b""[..]),
    ] {
        let port = fake_proxy(reply).await;
        let start = std::time::Instant::now();
        let j = through(&format!("{scheme}://127.0.0.1:{port}"), 25, &[]).await;
        assert_eq!(
            code(&j),
            "proxy.protocol-error",
            "{scheme} {reply:?}: {j:#}"
        );
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}

/// A SCRAM-SHA-256 server that builds a valid server-first from the client's nonce,
/// then sends a server signature that is not the one the password gives: what a man in
/// the middle without the password (or a server with the wrong user database) does.
async fn scram_impostor(final_in_235: bool) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (c, _) = l.accept().await.unwrap();
        let (r, mut w) = c.into_split();
        let mut lines = BufReader::new(r).lines();
        let mut seen = Vec::new();
        w.write_all(b"220 mx.test ESMTP\r\n").await.unwrap();
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await
        {
            seen.push(line.clone());
            let reply = if line.starts_with("EHLO") {
                "250-mx.test\r\n250 AUTH SCRAM-SHA-256 PLAIN\r\n".to_owned()
            } else if let Some(ir) = line.strip_prefix("AUTH SCRAM-SHA-256 ") {
                let first = String::from_utf8(B64.decode(ir).unwrap()).unwrap();
                let nonce = first.split("r=").nth(1).unwrap().to_owned();
                let sf = format!("r={nonce}impostor,s={},i=4096", B64.encode(b"salt1234"));
                format!("334 {}\r\n", B64.encode(sf))
            } else if line.starts_with("QUIT") {
                "221 bye\r\n".into()
            } else if line == "*" {
                "501 5.7.0 cancelled\r\n".into()
            } else if final_in_235 {
                format!(
                    "235 {}\r\n",
                    B64.encode(format!("v={}", B64.encode([7u8; 32])))
                )
            } else {
                format!(
                    "334 {}\r\n",
                    B64.encode(format!("v={}", B64.encode([7u8; 32])))
                )
            };
            w.write_all(reply.as_bytes()).await.unwrap();
        }
        seen
    });
    (port, task)
}

#[tokio::test]
async fn scram_server_signature_that_does_not_verify() {
    for final_in_235 in [false, true] {
        let (port, task) = scram_impostor(final_in_235).await;
        let out = smtprobe(
            vec![
                "check".into(),
                "localhost".into(),
                "--port".into(),
                port.to_string(),
                "--tls".into(),
                "none".into(),
                "--allow-plaintext-auth".into(),
                "--user".into(),
                "you@example.com".into(),
                "--timeout".into(),
                "3".into(),
                "--json".into(),
            ],
            vec![("SMTPROBE_PASSWORD", "pencil-sentinel".into())],
        )
        .await;
        let j = json(&out);
        assert_eq!(code(&j), "auth.server-not-verified", "{j:#}");
        assert_eq!(out.status.code(), Some(6));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains("pencil-sentinel"));
        // The server signature is redacted in the transcript and the evidence alike.
        let v = B64.encode(format!("v={}", B64.encode([7u8; 32])));
        assert!(!stdout.contains(&v), "{stdout}");
        assert!(
            stdout.contains("<redacted: SCRAM server signature>"),
            "{stdout}"
        );
        let seen = task.await.unwrap();
        // One attempt: no fallback to PLAIN after the SCRAM failure.
        assert_eq!(
            seen.iter().filter(|l| l.starts_with("AUTH")).count(),
            1,
            "{seen:?}"
        );
        if !final_in_235 {
            assert!(seen.iter().any(|l| l == "*"), "{seen:?}");
        }
    }
}

#[tokio::test]
async fn password_command_success_failure_hang_and_silence() {
    // The password from the command reaches the server (base64 PLAIN), never the output.
    let server = FixtureServer::start(&["
        * TLS
        S: 220 mx ESMTP
        C: EHLO {any}
        S: 250-mx
        S: 250 AUTH PLAIN
        C: AUTH PLAIN <redacted: user u@x.test>
        S: 235 2.7.0 ok
        C: QUIT
        S: 221 bye"])
    .await;
    let a = args(
        &server,
        &server.ca,
        &[
            "--tls",
            "implicit",
            "--user",
            "u@x.test",
            "--json",
            "--password-command",
            "printf 'cmd-s3cret\\nignored\\n'",
        ],
    );
    let out = smtprobe(a, vec![]).await;
    assert_eq!(code(&json(&out)), "ok");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("cmd-s3cret"));
    let seen = server.seen_when_ended(Duration::from_secs(3)).await;
    let plain = B64.encode("\0u@x.test\0cmd-s3cret");
    assert!(
        seen.lines.iter().any(|l| l.contains(&plain)),
        "{:?}",
        seen.lines
    );

    for (cmd, expect) in [
        ("echo nope-s3cret; exit 7", "failed (exit status 7)"),
        ("true", "printed nothing"),
        ("sleep 20", "did not finish within 1s"),
    ] {
        let start = std::time::Instant::now();
        let out = smtprobe(
            vec![
                "check".into(),
                "localhost".into(),
                "--user".into(),
                "u@x.test".into(),
                "--timeout".into(),
                "1".into(),
                "--password-command".into(),
                cmd.into(),
            ],
            vec![],
        )
        .await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        assert!(err.contains(expect), "{cmd}: {err}");
        assert!(
            !err.contains("nope-s3cret") && out.stdout.is_empty(),
            "{err}"
        );
        assert!(start.elapsed() < Duration::from_secs(8), "{cmd}");
    }
}

#[tokio::test]
async fn smtputf8_needed_but_not_offered_is_not_sent() {
    // 8BITMIME but no SMTPUTF8.
    let server = smtp_server().await;
    let a = args_without_ca(
        &server,
        &[
            "--tls",
            "none",
            "--json",
            "--from",
            "me@example.org",
            "--to",
            "jörg@bücher.example",
        ],
    );
    let out = smtprobe(a, vec![]).await;
    let j = json(&out);
    assert_eq!(
        (code(&j), j["failed_stage"].as_str()),
        ("send.extension-not-offered", Some("mail")),
        "{j:#}"
    );
    let seen = server.seen_when_ended(Duration::from_secs(3)).await;
    assert!(
        !seen.lines.iter().any(|l| l.starts_with("MAIL")),
        "{:?}",
        seen.lines
    );
}

/// Every code issue 13 added is emitted by a real run in this suite (the registry test in
/// `diagnoses` excuses exactly these, see `EMITTED_IN_PARITY`).
#[test]
fn parity_codes_are_emitted() {
    let suite = include_str!("parity.rs");
    for c in crate::diagnoses::EMITTED_IN_PARITY {
        assert!(
            suite.contains(&format!("\"{c}\"")),
            "{c} is excused in diagnoses.rs but no parity test asserts it"
        );
    }
}
