//! `smtprobe web` and `--html` against real parts: the HTTP API over real TCP, the page
//! in headless Chromium (Debian's `chromium` + `chromium-driver`, driven through
//! WebDriver by a minimal JSON client below), and the HTML report opened in the same
//! browser with networking off. Checks run against the in-process replay server on
//! 127.0.0.1 (the server is started with `--allow-private`'s option to reach it).
//!
//! Screenshots land in `target/web-screenshots/` (`page.png`, `report.png`) as CI
//! artifacts. With `CI` set, a missing chromium or chromedriver fails the browser tests.

use base64::Engine as _;
use serde_json::{json, Value};
use smtprobe::app::web::{WebOptions, WebServer};
use smtprobe::replay::{ReplayOptions, ReplayServer};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const PASSWORD: &str = "web-test-secret-Pw-4711";

/// A running replay server (bad credentials at AUTH) and a web server in front of it.
struct Lab {
    rt: tokio::runtime::Runtime,
    web: SocketAddr,
    smtp_port: u16,
}

fn fixture(name: &str) -> smtprobe::Fixture {
    let (_, text) = smtprobe::app::demo::BUNDLED
        .iter()
        .find(|(n, _)| *n == name)
        .expect("bundled fixture");
    smtprobe::Fixture::parse(text).unwrap()
}

fn lab_with(fixture_name: &str, opts: impl FnOnce(&mut WebOptions)) -> Lab {
    lab_from(fixture(fixture_name), |o, _| opts(o))
}

/// A lab playing `f`; `opts` also gets the replay server's port.
fn lab_from(f: smtprobe::Fixture, opts: impl FnOnce(&mut WebOptions, u16)) -> Lab {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (web, smtp_port) = rt.block_on(async {
        let replay = ReplayServer::bind(
            f,
            "127.0.0.1:0".parse().unwrap(),
            ReplayOptions {
                read_timeout: Duration::from_secs(10),
                ..ReplayOptions::default()
            },
        )
        .await
        .unwrap();
        let smtp_port = replay.local_addr().unwrap().port();
        let roots = rustls_pemfile::certs(&mut replay.ca_pem().as_bytes())
            .map(Result::unwrap)
            .collect();
        tokio::spawn(replay.run_forever(|_| {}));
        let mut o = WebOptions {
            allow_private: true,
            extra_roots: roots,
            rate_per_minute: 0,
            ..WebOptions::default()
        };
        opts(&mut o, smtp_port);
        let server = WebServer::bind("127.0.0.1:0".parse().unwrap(), o)
            .await
            .unwrap();
        let web = server.local_addr().unwrap();
        tokio::spawn(server.serve());
        (web, smtp_port)
    });
    Lab { rt, web, smtp_port }
}

fn lab() -> Lab {
    lab_with("gmail-587-bad-credentials", |_| {})
}

/// One HTTP/1.1 exchange over a fresh connection (`Connection: close`, read to EOF).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // The peer may answer (413) and close before reading a large body.
    let _ = s.write_all(body);
    // Read the head, then exactly the body (chromedriver keeps connections open).
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let split = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut buf).unwrap_or(0);
        assert!(n > 0, "no HTTP answer: {:?}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let lower = head.to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    let length = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse::<usize>().unwrap());
    let chunked = lower.contains("transfer-encoding: chunked");
    loop {
        let complete = match length {
            Some(n) => body.len() >= n,
            None if chunked => body.ends_with(b"0\r\n\r\n"),
            None => false,
        };
        if complete {
            break;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    if chunked {
        body = dechunk(&body);
    }
    (status, head, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
}

fn post_json(addr: SocketAddr, path: &str, body: &Value) -> (u16, String, Value) {
    let (status, head, body) = http(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, head, v)
}

fn check_body(lab: &Lab, host: &str) -> Value {
    json!({
        "host": host, "port": lab.smtp_port, "tls": "starttls",
        "user": "you@gmail.com", "password": PASSWORD, "timeout": 10,
    })
}

/// Every form the secret could take on the wire or in a report.
fn assert_no_secret(what: &str, text: &str) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let plain = b64.encode(format!("\0you@gmail.com\0{PASSWORD}"));
    for needle in [PASSWORD.to_owned(), b64.encode(PASSWORD), plain] {
        assert!(
            !text.contains(&needle),
            "{what} holds the secret ({needle})"
        );
    }
}

#[test]
fn api_good_check_answers_the_check_json_document() {
    let lab = lab();
    let (status, head, v) = post_json(lab.web, "/api/v1/check", &check_body(&lab, "127.0.0.1"));
    assert_eq!(status, 200, "{v}");
    assert!(head
        .to_ascii_lowercase()
        .contains("cache-control: no-store"));
    assert_eq!(v["outcome"], "failed");
    assert_eq!(v["failed_stage"], "auth");
    assert_eq!(v["diagnosis"]["code"], "auth.bad-credentials");
    assert!(v["diagnosis"]["fix"]
        .as_str()
        .unwrap()
        .contains("app password"));
    assert!(v["transcript"].as_array().unwrap().len() > 10);
    assert_no_secret("the API answer", &v.to_string());

    let (status, _, v) = http(
        lab.web,
        "GET",
        "/api/v1/explain/auth.bad-credentials",
        &[],
        b"",
    );
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&v).unwrap();
    assert_eq!(v["code"], "auth.bad-credentials");
    assert!(v["text"].as_str().unwrap().contains("auth.bad-credentials"));
    let (status, _, v) = http(lab.web, "GET", "/api/v1/explain/no.such-code", &[], b"");
    let v: Value = serde_json::from_slice(&v).unwrap();
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("unknown-code"))
    );
    // The form without script: the page's cookie and hidden token, then the report.
    let (status, head, page) = http(lab.web, "GET", "/", &[], b"");
    assert_eq!(status, 200);
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    let token = cookie.strip_prefix("smtprobe_csrf=").unwrap();
    assert!(String::from_utf8_lossy(&page).contains(&format!("name=\"csrf\" value=\"{token}\"")));
    let form = format!(
        "csrf={token}&host=127.0.0.1&port={}&tls=starttls&user=you%40gmail.com&password={PASSWORD}&timeout=10",
        lab.smtp_port
    );
    let (status, head, report) = http(
        lab.web,
        "POST",
        "/check",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
            ("Origin", &format!("http://{}", lab.web)),
        ],
        form.as_bytes(),
    );
    let report = String::from_utf8(report).unwrap();
    assert_eq!(status, 200, "{report}");
    assert!(head
        .to_ascii_lowercase()
        .contains("content-security-policy: default-src 'none'"));
    assert!(report.starts_with("<!DOCTYPE html>") && report.contains("auth.bad-credentials"));
    assert_no_secret("the form's report", &report);
    let (status, _, v) = http(lab.web, "GET", "/healthz", &[], b"");
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_slice::<Value>(&v).unwrap()["status"], "ok");
    drop(lab.rt);
}

#[test]
fn api_streams_stage_events_then_the_report() {
    let lab = lab();
    let (status, head, body) = http(
        lab.web,
        "POST",
        "/api/v1/check",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "text/event-stream"),
        ],
        check_body(&lab, "127.0.0.1").to_string().as_bytes(),
    );
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{head}"
    );
    let text = String::from_utf8(body).unwrap();
    let events: Vec<(&str, Value)> = text
        .split("\n\n")
        .filter_map(|block| {
            let kind = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((kind, serde_json::from_str(data).unwrap()))
        })
        .collect();
    let stages: Vec<&str> = events
        .iter()
        .filter(|(k, _)| *k == "stage")
        .map(|(_, v)| v["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["dns", "connect", "greeting", "ehlo", "starttls", "tls", "ehlo", "auth"]
    );
    assert!(events.iter().any(|(k, v)| *k == "line" && v["dir"] == "S"));
    let (last, report) = events.last().unwrap();
    assert_eq!(*last, "report");
    assert_eq!(
        report["report"]["diagnosis"]["code"],
        "auth.bad-credentials"
    );
    assert!(report["html"]
        .as_str()
        .unwrap()
        .starts_with("<!DOCTYPE html>"));
    assert_no_secret("the event stream", &text);
    drop(lab.rt);
}

#[test]
fn api_refuses_private_and_metadata_addresses_by_default() {
    let lab = lab_with("gmail-587-bad-credentials", |o| o.allow_private = false);
    for (host, why) in [
        ("127.0.0.1", "loopback"),
        ("localhost", "loopback"),
        ("169.254.169.254", "cloud metadata"),
        ("10.1.2.3", "private"),
        ("::ffff:192.168.0.1", "private"),
    ] {
        let (status, _, v) = post_json(lab.web, "/api/v1/check", &check_body(&lab, host));
        assert_eq!(status, 403, "{host}: {v}");
        assert_eq!(v["error"]["code"], "refused-address", "{host}");
        assert_eq!(v["error"]["field"], "host");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(why) && msg.contains("--allow-private"),
            "{host}: {msg}"
        );
        assert_no_secret("a refusal", msg);
    }
    drop(lab.rt);
}

#[test]
fn api_refuses_bad_requests_naming_the_field() {
    let lab = lab();
    // Oversized body.
    let big = json!({"host": "x".repeat(20_000)}).to_string();
    let (status, _, body) = http(
        lab.web,
        "POST",
        "/api/v1/check",
        &[("Content-Type", "application/json")],
        big.as_bytes(),
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (413, Some("body-too-large"))
    );
    // Malformed JSON: the position, never the text.
    let (status, _, body) = http(
        lab.web,
        "POST",
        "/api/v1/check",
        &[("Content-Type", "application/json")],
        format!("{{\"host\": \"a\", \"password\": \"{PASSWORD}").as_bytes(),
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("bad-json"))
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains("column"),
        "{v}"
    );
    assert_no_secret("a bad-json answer", &v.to_string());
    // Well-formed JSON with a mistyped field: 400 naming it.
    for (body, field) in [
        (json!({"host": "127.0.0.1", "port": "587"}), "port"),
        (
            json!({"host": "127.0.0.1", "user": "u", "password": 4711}),
            "password",
        ),
        (
            json!({"host": "127.0.0.1", "password_file": "/etc/shadow"}),
            "password_file",
        ),
        (json!({"host": "127.0.0.1", "tls": "ssl"}), "tls"),
    ] {
        let (status, _, v) = post_json(lab.web, "/api/v1/check", &body);
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(field));
    }
    // Not JSON at all, a cross-site browser, a foreign Host header.
    let (status, _, _) = http(
        lab.web,
        "POST",
        "/api/v1/check",
        &[("Content-Type", "text/plain")],
        b"{}",
    );
    assert_eq!(status, 415);
    let (status, _, _) = http(
        lab.web,
        "POST",
        "/api/v1/check",
        &[
            ("Content-Type", "application/json"),
            ("Origin", "http://evil.example"),
        ],
        b"{}",
    );
    assert_eq!(status, 403);
    let (status, _, _) = http(
        lab.web,
        "POST",
        "/api/v1/check",
        &[
            ("Content-Type", "application/json"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        b"{}",
    );
    assert_eq!(status, 403);
    let (status, _, _) = http(lab.web, "GET", "/", &[("Host", "rebind.evil.example")], b"");
    assert_eq!(status, 421);
    let (status, _, body) = http(lab.web, "GET", "/api/v1/check", &[], b"");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (405, Some("method-not-allowed"))
    );
    // The no-script form needs the CSRF cookie and field to match.
    let (status, _, _) = http(
        lab.web,
        "POST",
        "/check",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", "smtprobe_csrf=aaaa"),
        ],
        b"host=127.0.0.1&csrf=bbbb",
    );
    assert_eq!(status, 403);
    drop(lab.rt);
}

#[test]
fn api_rate_limits_each_client_and_bounds_concurrent_checks() {
    let lab = lab_with("gmail-587-bad-credentials", |o| {
        o.rate_per_minute = 2;
        o.allow_private = false;
    });
    // Refused targets are cheap, and count like any check.
    for _ in 0..2 {
        let (status, _, _) = post_json(lab.web, "/api/v1/check", &check_body(&lab, "127.0.0.1"));
        assert_eq!(status, 403);
    }
    let (status, head, v) = post_json(lab.web, "/api/v1/check", &check_body(&lab, "127.0.0.1"));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (429, Some("rate-limited")),
        "{v}"
    );
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 30"),
        "{head}"
    );
    drop(lab.rt);

    // One check at a time: a second one while a slow one runs is answered 503.
    let slow = lab_with("gmail-587-bad-credentials", |o| o.max_checks = 1);
    let addr = slow.web;
    let body = check_body(&slow, "127.0.0.1");
    // A server that accepts and then says nothing holds the first check at its greeting.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let mut hold = body.clone();
    hold["port"] = json!(silent_port);
    hold["timeout"] = json!(3);
    let first = std::thread::spawn(move || post_json(addr, "/api/v1/check", &hold));
    let _accepted = silent.accept().unwrap();
    let (status, head, v) = post_json(addr, "/api/v1/check", &body);
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (503, Some("busy")),
        "{v}"
    );
    assert!(head.to_ascii_lowercase().contains("retry-after"));
    let (status, _, v) = first.join().unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        v["failed_stage"], "greeting",
        "the first check kept its timeout: {v}"
    );
    drop(slow.rt);
}

#[test]
fn html_report_is_self_contained_escaped_and_redacted() {
    let scenarios = smtprobe::app::demo::scenarios().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for name in [
        "gmail-587-bad-credentials",
        "gmail-587-plain-send-ok",
        "cert-expired",
    ] {
        let s = scenarios.iter().find(|s| s.name == name).unwrap();
        let o = rt.block_on(smtprobe::app::demo::run(s)).unwrap();
        let page = smtprobe::report::html::report(&o.report, &Default::default());
        assert!(page.contains("Content-Security-Policy\" content=\"default-src 'none'"));
        assert!(page.contains(o.report.diagnosis.code.as_str()));
        // Nothing that could load anything.
        for bad in [
            "src=", "href=", "url(", "@import", "<link", "<script", "<img",
        ] {
            assert!(!page.contains(bad), "{name}: {bad}");
        }
        assert!(!page.contains("demo-app-password"));
        assert!(
            !page.contains(&base64::engine::general_purpose::STANDARD.encode("demo-app-password"))
        );
        if o.report.ok() {
            assert!(page.contains("Working settings"));
        }
    }
    // Hostile server text: markup and escapes arrive escaped.
    let mut r = rt
        .block_on(smtprobe::app::demo::run(
            scenarios
                .iter()
                .find(|s| s.name == "gmail-587-bad-credentials")
                .unwrap(),
        ))
        .unwrap()
        .report;
    r.diagnosis.summary = "<script>alert(1)</script>\u{1b}[2J\u{202e}".into();
    let page = smtprobe::report::html::report(&r, &Default::default());
    assert!(!page.contains("<script>alert"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[2J\\u{202e}"));
}

// ---- The browser -------------------------------------------------------------------

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free loopback port, killed on drop.
struct Driver {
    child: std::process::Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = wd(
            self.addr,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver command; returns `value`.
fn wd(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let (status, _, raw) = http(
        addr,
        method,
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    let v: Value = serde_json::from_slice(&raw).map_err(|e| format!("{path}: {e}"))?;
    if status != 200 {
        return Err(format!("{path}: HTTP {status}: {v}"));
    }
    Ok(v["value"].clone())
}

/// Chromium through chromedriver, or `None` (skipped) when they are not installed and
/// `CI` is unset. Under CI a missing browser is a failure.
fn browser() -> Option<Driver> {
    let present =
        std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    if !present {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but {CHROMIUM} or {CHROMEDRIVER} is missing: install the Debian packages chromium and chromium-driver (.ci/apt-packages.txt)");
        }
        eprintln!("skipped: {CHROMIUM} / {CHROMEDRIVER} not installed");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let profile = tempfile::tempdir().unwrap();
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=1100,1400",
                     format!("--user-data-dir={}", profile.path().display())],
        },
        "goog:loggingPrefs": {"performance": "ALL", "browser": "ALL"},
    }}});
    let v = wd(addr, "POST", "/session", Some(caps)).expect("a Chromium session");
    let session = v["sessionId"].as_str().unwrap().to_owned();
    Some(Driver {
        child,
        addr,
        session,
        _profile: profile,
    })
}

impl Driver {
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        wd(
            self.addr,
            method,
            &format!("/session/{}{path}", self.session),
            body,
        )
        .unwrap()
    }
    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }
    fn js(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }
    fn element(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }
    fn click(&self, css: &str) {
        let e = self.element(css);
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
    }
    fn wait_for(&self, what: &str, script: &str) {
        let start = Instant::now();
        while self.js(script) != Value::Bool(true) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.cmd("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/web-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }
    fn log(&self, kind: &str) -> Vec<Value> {
        self.cmd("POST", "/se/log", Some(json!({ "type": kind })))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
    /// Every request the browser sent since the last call (from the performance log).
    fn requests(&self) -> Vec<Value> {
        self.log("performance")
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e["message"].as_str()?).ok())
            .filter(|m| m["message"]["method"] == "Network.requestWillBeSent")
            .map(|m| m["message"]["params"]["request"].clone())
            .collect()
    }
    fn console_errors(&self) -> Vec<String> {
        self.log("browser")
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].to_string())
            .collect()
    }
}

#[test]
fn browser_page_checks_live_and_shows_the_verdict_without_leaking_the_password() {
    let Some(d) = browser() else { return };
    let lab = lab();
    let base = format!("http://{}", lab.web);
    d.goto(&format!("{base}/"));
    d.type_into("#host", "127.0.0.1");
    d.type_into("#port", &lab.smtp_port.to_string());
    d.js("document.getElementById('tls').value = 'starttls'; return true;");
    d.type_into("#user", "you@gmail.com");
    d.type_into("#password", PASSWORD);
    d.type_into("#timeout", "10");
    d.click("#submit");
    d.wait_for(
        "the verdict",
        "return !document.getElementById('verdict').classList.contains('hidden') && !document.getElementById('report').classList.contains('hidden');",
    );
    let verdict = d.js("return document.getElementById('verdict').innerText;");
    let verdict = verdict.as_str().unwrap();
    assert!(verdict.contains("auth.bad-credentials"), "{verdict}");
    assert!(
        verdict.contains("app password"),
        "the fix is shown: {verdict}"
    );
    let stages = d.js("return document.getElementById('stages').innerText;");
    assert!(stages.as_str().unwrap().contains("auth"), "{stages}");
    d.wait_for(
        "the report frame",
        "var f = document.getElementById('report'); return !!(f.contentDocument && f.contentDocument.getElementById('verdict'));",
    );
    let framed = d.js("return document.getElementById('report').contentDocument.body.innerText;");
    let framed = framed.as_str().unwrap();
    assert!(
        framed.contains("auth.bad-credentials") && framed.contains("Transcript"),
        "{framed}"
    );
    assert_eq!(
        d.js("return document.getElementById('password').value;"),
        "",
        "the password is cleared after use"
    );
    assert!(d
        .js("return document.getElementById('download').href;")
        .as_str()
        .unwrap()
        .starts_with("blob:"));
    d.js("window.scrollTo(0, document.getElementById('live').offsetTop); return true;");
    let shot = d.screenshot("page.png");
    assert!(std::fs::metadata(shot).unwrap().len() > 10_000);

    let source = d.cmd("GET", "/source", None);
    assert_no_secret("the page source", source.as_str().unwrap());
    assert_no_secret(
        "the report frame",
        &d.js("return document.getElementById('report').srcdoc;")
            .to_string(),
    );
    let requests = d.requests();
    assert!(requests.len() >= 4, "{requests:?}");
    let mut carried = 0;
    for r in &requests {
        let url = r["url"].as_str().unwrap();
        // The browser's own pages (its new-tab page at startup) never leave it.
        if url.starts_with("chrome://") || url.starts_with("chrome-untrusted://") {
            continue;
        }
        assert!(
            url.starts_with(&format!("{base}/"))
                || url.starts_with("data:")
                || url.starts_with("blob:")
                || url == "about:srcdoc",
            "a request went elsewhere: {url}"
        );
        assert_no_secret("a request URL", url);
        assert_no_secret("request headers", &r["headers"].to_string());
        let post = r["postData"].as_str().unwrap_or("");
        if post.contains(PASSWORD) {
            // The one place the password goes: the check request to this server.
            assert_eq!(url, format!("{base}/api/v1/check"));
            carried += 1;
        }
    }
    assert_eq!(carried, 1, "the password is sent once, to the check API");
    let errors = d.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    drop(lab.rt);
}

#[test]
fn browser_runs_a_demo_and_opens_the_html_report_offline() {
    let Some(d) = browser() else { return };
    let lab = lab();
    d.goto(&format!("http://{}/", lab.web));
    d.click("button.demo[data-demo='cert-expired']");
    d.wait_for("the demo verdict", "return document.getElementById('verdict').innerText.indexOf('tls.expired-certificate') >= 0;");

    // The report file: written by `--html`'s code, opened with networking off.
    let scenarios = smtprobe::app::demo::scenarios().unwrap();
    let s = scenarios
        .iter()
        .find(|s| s.name == "gmail-587-bad-credentials")
        .unwrap();
    let o = lab.rt.block_on(smtprobe::app::demo::run(s)).unwrap();
    let html = smtprobe::report::html::report(&o.report, &Default::default());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.html");
    std::fs::write(&file, &html).unwrap();
    assert!(!html.contains("demo-app-password"));
    d.cmd(
        "POST",
        "/goog/cdp/execute",
        Some(json!({"cmd": "Network.enable", "params": {}})),
    );
    d.cmd(
        "POST",
        "/goog/cdp/execute",
        Some(json!({"cmd": "Network.emulateNetworkConditions", "params": {"offline": true, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}})),
    );
    let _ = d.requests();
    let _ = d.console_errors();
    let url = format!("file://{}", file.display());
    d.goto(&url);
    d.wait_for("the report", "return document.readyState === 'complete';");
    let verdict = d.js("return document.getElementById('verdict').innerText;");
    assert!(
        verdict.as_str().unwrap().contains("auth.bad-credentials"),
        "{verdict}"
    );
    let rows = d.js("return document.querySelectorAll('.transcript tr').length;");
    assert!(rows.as_u64().unwrap() > 20, "{rows}");
    let styled = d.js("return getComputedStyle(document.querySelector('section')).borderRadius;");
    assert_eq!(
        styled, "10px",
        "the inline stylesheet applied under its CSP hash"
    );
    // An annotation opens without script.
    d.click(".transcript details summary");
    let open = d.js("return document.querySelector('.transcript details').open;");
    assert_eq!(open, true);
    d.screenshot("report.png");
    let requests = d.requests();
    assert!(
        requests.iter().all(|r| r["url"] == url),
        "the report loaded something: {requests:?}"
    );
    let errors = d.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");

    // The batch report: the CSS filter and the hash-allowed sort script both work.
    use smtprobe::report::html::{batch, BatchRow};
    let rows = vec![
        BatchRow::checked("zeta", 1, &o.report, 12.0),
        BatchRow::checked("alpha", 2, &o.report, 30.0),
        BatchRow::invalid(Some("mid"), 3, "line 3: field \"port\" must be a number"),
    ];
    let file = dir.path().join("batch.html");
    std::fs::write(&file, batch("nightly", &rows, 0, &Default::default())).unwrap();
    d.goto(&format!("file://{}", file.display()));
    let shown = "return Array.from(document.querySelectorAll('tbody tr')).filter(function (r) { return getComputedStyle(r).display !== 'none'; }).length;";
    assert_eq!(d.js(shown), 3);
    d.click("#f-row-invalid");
    assert_eq!(d.js(shown), 1, "picking a code shows only its rows");
    d.click("#f-all");
    d.click("th:first-child");
    let first = d.js("return document.querySelector('tbody tr td').textContent;");
    assert_eq!(first, "alpha", "the id column sorts ascending");
    let errors = d.console_errors();
    assert!(
        errors.is_empty(),
        "console errors (a CSP refusal of the sort script would show here): {errors:?}"
    );
    drop(lab.rt);
}

#[tokio::test]
async fn html_flag_on_check_demo_and_batch_writes_one_redacted_file() {
    use crate::common::smtprobe;
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).display().to_string();
    let server = ReplayServer::bind(
        fixture("gmail-587-bad-credentials"),
        "127.0.0.1:0".parse().unwrap(),
        ReplayOptions::default(),
    )
    .await
    .unwrap();
    let port = server.local_addr().unwrap().port();
    std::fs::write(path("ca.pem"), server.ca_pem()).unwrap();
    tokio::spawn(server.run_forever(|_| {}));

    // check
    let out = smtprobe(
        [
            "check",
            "localhost",
            "--port",
            &port.to_string(),
            "--tls",
            "starttls",
            "--user",
            "you@gmail.com",
            "--ca-file",
            &path("ca.pem"),
            "--connect-to",
            "127.0.0.1",
            "--html",
            &path("check.html"),
        ]
        .map(String::from)
        .to_vec(),
        vec![("SMTPROBE_PASSWORD", PASSWORD.to_owned())],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(path("check.html")).unwrap();
    assert!(html.contains("auth.bad-credentials") && html.contains("Transcript"));
    assert_no_secret("check --html", &html);

    // demo NAME and the demo table
    let out = smtprobe(
        ["demo", "cert-wrong-name", "--html", &path("demo.html")]
            .map(String::from)
            .to_vec(),
        vec![],
    )
    .await;
    assert_eq!(out.status.code(), Some(4));
    let html = std::fs::read_to_string(path("demo.html")).unwrap();
    assert!(html.contains("tls.hostname-mismatch") && html.contains("Certificate presented"));
    let out = smtprobe(
        ["demo", "--html", &path("demos.html")]
            .map(String::from)
            .to_vec(),
        vec![],
    )
    .await;
    assert_eq!(out.status.code(), Some(0));
    let html = std::fs::read_to_string(path("demos.html")).unwrap();
    assert!(
        html.contains("id=\"f-tls-hostname-mismatch\"")
            && html.contains("class=\"k-auth-bad-credentials")
    );

    // batch: counts per code and a row per profile, a bad row included
    let rows = [
        format!(
            r#"{{"id":"a","host":"localhost","port":{port},"tls":"starttls","user":"you@gmail.com","password_env":"PW","ca_file":"{}","connect_to":"127.0.0.1"}}"#,
            path("ca.pem")
        ),
        format!(
            r#"{{"id":"b","host":"localhost","port":{port},"tls":"starttls","user":"you@gmail.com","password_env":"PW","ca_file":"{}","connect_to":"127.0.0.1"}}"#,
            path("ca.pem")
        ),
        r#"{"id":"c","host":"localhost","port":"oops"}"#.to_owned(),
    ];
    std::fs::write(path("p.jsonl"), rows.join("\n")).unwrap();
    let out = smtprobe(
        ["batch", &path("p.jsonl"), "--html", &path("batch.html")]
            .map(String::from)
            .to_vec(),
        vec![("PW", PASSWORD.to_owned())],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(path("batch.html")).unwrap();
    assert!(
        html.contains("<code>auth.bad-credentials</code> <span class=\"n\">2</span>"),
        "{html}"
    );
    assert!(html.contains("row.invalid") && html.contains("field &quot;port&quot;"));
    assert!(
        html.contains("script-src &#39;sha256-"),
        "the sort script is allowed by hash only"
    );
    assert_no_secret("batch --html", &html);
}

#[test]
fn the_web_binary_logs_no_secret_even_at_trace_level_and_stays_on_loopback() {
    use std::io::BufRead as _;
    // Beyond loopback needs --public.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smtprobe"))
        .args(["web", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--public"));

    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let replay = rt.block_on(async {
        ReplayServer::bind(
            fixture("gmail-587-bad-credentials"),
            "127.0.0.1:0".parse().unwrap(),
            ReplayOptions::default(),
        )
        .await
        .unwrap()
    });
    let smtp_port = replay.local_addr().unwrap().port();
    std::fs::write(&ca, replay.ca_pem()).unwrap();
    rt.spawn(replay.run_forever(|_| {}));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_smtprobe"))
        .args([
            "-vvv",
            "web",
            "--listen",
            "127.0.0.1:0",
            "--allow-private",
            "--ca-file",
        ])
        .arg(&ca)
        .env("RUST_LOG", "trace")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let addr: SocketAddr = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no address printed: {log}"
        );
        log.push_str(&line);
        if let Some(rest) = line.split("open http://").nth(1) {
            break rest.split('/').next().unwrap().parse().unwrap();
        }
    };
    assert!(log.contains("WARNING: --allow-private"), "{log}");
    let body = json!({"host": "127.0.0.1", "port": smtp_port, "tls": "starttls", "user": "you@gmail.com", "password": PASSWORD});
    let (status, _, v) = post_json(addr, "/api/v1/check", &body);
    assert_eq!(
        (status, v["diagnosis"]["code"].as_str()),
        (200, Some("auth.bad-credentials")),
        "{v}"
    );
    let (status, _, _) = post_json(
        addr,
        "/api/v1/check",
        &json!({"host": "127.0.0.1", "password": PASSWORD}),
    );
    assert_eq!(status, 400);
    child.kill().unwrap();
    let _ = child.wait();
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    log.push_str(&rest);
    assert!(
        log.contains("smtprobe::wire"),
        "trace logging was on: {log}"
    );
    assert_no_secret("the server's trace log", &log);
    drop(rt);
}

/// A lab for `you@acme.test`: the test dnsmasq says acme.test's MX is Google's, and
/// smtp.gmail.com is 127.0.0.1; candidate port 587 maps to the replay server (bad
/// credentials for you@acme.test), the other standard ports to a closed port.
fn address_lab(test: &str, allow_private: bool) -> Option<(Lab, crate::discover::Dnsmasq)> {
    let dns = crate::discover::Dnsmasq::start(
        test,
        &[
            "--mx-host=acme.test,smtp.google.com,1".into(),
            "--host-record=smtp.gmail.com,127.0.0.1".into(),
        ],
    )?;
    let (_, text) = smtprobe::app::demo::BUNDLED
        .iter()
        .find(|(n, _)| *n == "gmail-587-bad-credentials")
        .expect("bundled fixture");
    // The user name defaults to the address: the fixture expects that login.
    let f = smtprobe::Fixture::parse(&text.replace("you@gmail.com", "you@acme.test")).unwrap();
    let closed = crate::discover::closed_port();
    let dns_addr = dns.addr;
    let lab = lab_from(f, move |o, smtp| {
        o.allow_private = allow_private;
        o.dns_server = Some(dns_addr);
        o.port_map = vec![(587, smtp), (465, closed), (25, closed), (2525, closed)];
    });
    Some((lab, dns))
}

#[test]
fn api_address_discovers_then_checks_the_best_candidate_once() {
    let Some((lab, _dns)) = address_lab("api_address_discovers", true) else {
        return;
    };
    let body = json!({ "host": "you@acme.test", "password": PASSWORD, "timeout": 10 });
    let (status, _, v) = post_json(lab.web, "/api/v1/check", &body);
    assert_eq!(status, 200, "{v:#}");
    let d = &v["discovery"];
    let best = &d["probes"][d["best"].as_u64().expect("a best candidate") as usize];
    assert_eq!(best["candidate"]["host"], "smtp.gmail.com", "{d:#}");
    assert_eq!(best["candidate"]["port"], 587);
    let mx: Vec<String> = d["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["source"] == "mx")
        .flat_map(|s| s["said"].as_array().unwrap().iter())
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    assert!(mx.iter().any(|l| l.contains("smtp.google.com")), "{mx:?}");
    // The one check with credentials ran on the discovered candidate (mapped port), as
    // the address, and reached AUTH.
    let check = &v["check"];
    assert_eq!(check["target"]["host"], "smtp.gmail.com", "{check:#}");
    assert_eq!(check["target"]["port"], lab.smtp_port);
    assert_eq!(check["failed_stage"], "auth", "{:#}", check["transcript"]);
    assert_eq!(check["diagnosis"]["code"], "auth.bad-credentials");
    // The user name defaulted to the address: the redacted AUTH line names it.
    let transcript = check["transcript"].to_string();
    assert!(
        transcript.contains("user you@acme.test"),
        "the login was not made as the address: {transcript}"
    );
    assert_no_secret("the address answer", &v.to_string());
    // Fields the address decides are refused by name.
    let body = json!({ "host": "you@acme.test", "port": 587, "password": PASSWORD });
    let (status, _, v) = post_json(lab.web, "/api/v1/check", &body);
    assert_eq!(
        (status, v["error"]["field"].as_str()),
        (400, Some("port")),
        "{v}"
    );
    drop(lab.rt);
}

#[test]
fn api_address_refuses_private_candidates_without_allow_private() {
    let Some((lab, _dns)) = address_lab("api_address_refuses_private", false) else {
        return;
    };
    let body = json!({ "host": "you@acme.test", "password": PASSWORD, "timeout": 10 });
    let (status, _, v) = post_json(lab.web, "/api/v1/check", &body);
    assert_eq!(status, 200, "{v:#}");
    assert!(v["check"].is_null(), "nothing may be checked: {v:#}");
    let d = &v["discovery"];
    assert!(d["best"].is_null());
    let probes = d["probes"].as_array().unwrap();
    assert!(!probes.is_empty());
    for p in probes {
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.contains("not probed") && detail.contains("loopback"),
            "{p:#}"
        );
    }
    let autoconfig = d["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "autoconfig")
        .unwrap()
        .to_string();
    assert!(autoconfig.contains("skipped"), "{autoconfig}");
    assert_no_secret("the refused address answer", &v.to_string());
    drop(lab.rt);
}
