//! Real SMTP client libraries and tools, at their default settings with certificate
//! verification on, against `smtprobe serve` playing every bundled fixture.
//!
//! Each pair runs as an app would: serve listens on a free loopback port with
//! `--once --json`, the client connects to `localhost` trusting only serve's CA, uses
//! STARTTLS (587-style) or TLS from the first byte (465-style) per the fixture's `mode`,
//! logs in with the fixture's user and a dummy password (no login when the fixture has
//! no user), sends a small message and quits. Two things are asserted per pair:
//! - the app-level result the library reports, derived from the fixture's `expect`
//!   header and its decisive reply: `ok` → sent; an `auth` failure → the library's
//!   authentication error with the fixture's code and text (e.g. 534 "Application-specific
//!   password required"); STARTTLS stripped → the client refuses to go on (RFC 3207 §4);
//!   a MAIL/RCPT/DATA/EHLO failure → the library's error for that stage with the code;
//! - serve's verdict (its `connection` JSON object and exit status): the scenario's
//!   result was delivered, and the connection passed unless the client broke a security
//!   rule (the only case here: credentials sent in clear text to the `mode: none`
//!   fixture).
//!
//! The client programs are `tests/clients/*` (also the README's snippets); the words they
//! print are listed in `tests/clients/README.md`. Python, nodemailer and PHPMailer print
//! one JSON line; curl, swaks and msmtp are read from their exit status and their
//! conversation trace (see [`classify_tool`]).
//!
//! With `CI` set a missing client fails the test, naming the package; without it the
//! client's pairs are reported as skipped. `cargo test --test it clients:: -- --nocapture`
//! prints the matrix and the pass figure.

use serde_json::Value;
use smtprobe::fixture::{Expect, Step};
use smtprobe::{Fixture, Stage, TlsMode};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Pairs run at once (the CI machine has 2 cores; clients mostly wait on the network).
const PARALLEL: usize = 4;
/// A client that has not finished by then is killed, and so is its server.
const CLIENT_DEADLINE: Duration = Duration::from_secs(30);
/// The dummy password every client logs in with (serve accepts any).
const PASSWORD: &str = "dummy-app-password";
/// The recipient: not the fixtures' recorded one, as in a real app.
const RECIPIENT: &str = "customer@example.net";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------
// The clients.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reads {
    /// The program prints one JSON line (the app's own view).
    Json,
    /// A command-line tool: read its exit status and its conversation trace.
    Curl,
    Swaks,
    Msmtp,
}

struct Client {
    name: &'static str,
    /// The program, relative to the repository.
    program: &'static [&'static str],
    reads: Reads,
    /// It can log in without sending (smtplib `login()`, nodemailer `verify()`,
    /// PHPMailer `smtpConnect()`, swaks `--quit-after AUTH`). curl and msmtp cannot:
    /// they always send a message, which serve must accept after a login-only scenario.
    login_only: bool,
    /// What must be installed, and the package that brings it, for the missing line.
    needs: fn() -> Result<(), String>,
}

fn on_path(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn need(program: &str, package: &str) -> Result<(), String> {
    if on_path(program) {
        Ok(())
    } else {
        Err(format!("`{program}` is not installed (package {package})"))
    }
}

fn need_file(path: &Path, package: &str) -> Result<(), String> {
    if path.exists() {
        Ok(())
    } else {
        Err(format!("{} is missing (package {package})", path.display()))
    }
}

const CLIENTS: &[Client] = &[
    Client {
        name: "python-smtplib",
        program: &["python3", "tests/clients/smtplib_send.py"],
        reads: Reads::Json,
        login_only: true,
        needs: || need("python3", "Debian python3"),
    },
    Client {
        name: "nodemailer",
        program: &["node", "tests/clients/nodemailer_send.js"],
        reads: Reads::Json,
        login_only: true,
        needs: || {
            need("node", "Debian nodejs")?;
            need_file(
                &root().join(".ci/node_modules/nodemailer/package.json"),
                "npm nodemailer: npm install --prefix .ci --no-audit --no-fund",
            )
        },
    },
    Client {
        name: "phpmailer",
        program: &["php", "tests/clients/phpmailer_send.php"],
        reads: Reads::Json,
        login_only: true,
        needs: || {
            need("php", "Debian php-cli")?;
            need_file(
                Path::new("/usr/share/php/libphp-phpmailer/src/PHPMailer.php"),
                "Debian libphp-phpmailer",
            )
        },
    },
    Client {
        name: "curl",
        program: &["bash", "tests/clients/curl.sh"],
        reads: Reads::Curl,
        login_only: false,
        needs: || need("curl", "Debian curl"),
    },
    Client {
        name: "swaks",
        program: &["bash", "tests/clients/swaks.sh"],
        reads: Reads::Swaks,
        login_only: true,
        needs: || {
            need("swaks", "Debian swaks")?;
            let tls = Command::new("perl")
                .args(["-MNet::SSLeay", "-MIO::Socket::SSL", "-e1"])
                .stderr(Stdio::null())
                .status();
            match tls {
                Ok(s) if s.success() => Ok(()),
                _ => Err(
                    "swaks cannot speak TLS (packages Debian libnet-ssleay-perl \
                          libio-socket-ssl-perl)"
                        .into(),
                ),
            }
        },
    },
    Client {
        name: "msmtp",
        program: &["bash", "tests/clients/msmtp.sh"],
        reads: Reads::Msmtp,
        login_only: false,
        needs: || need("msmtp", "Debian msmtp"),
    },
];

// ---------------------------------------------------------------------------------
// The scenarios.

struct Scenario {
    name: String,
    path: PathBuf,
    mode: TlsMode,
    user: Option<String>,
    expect: Expect,
    /// The fixture's decisive refusal: the first 4xx/5xx reply, code and first line's
    /// text (after the enhanced code), e.g. 534 "Application-specific password required.
    /// Learn more at".
    refusal: Option<(u16, String)>,
    /// The script sends a message (a `C: MAIL` step); otherwise it is login-only.
    sends: bool,
}

/// Every `.fixture` under `dir`, at any depth (`fixtures/providers/` included).
fn fixture_paths(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_dir() {
            fixture_paths(&p, out);
        } else if p.extension().is_some_and(|e| e == "fixture") {
            out.push(p);
        }
    }
}

fn scenarios() -> Vec<Scenario> {
    let mut paths = Vec::new();
    fixture_paths(&root().join("fixtures"), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let f = Fixture::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut refusal = None;
            let mut sends = false;
            for s in &f.steps {
                match &s.step {
                    Step::Server(line) if refusal.is_none() => {
                        let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
                        if code >= 400 {
                            refusal = Some((code, reply_text(line)));
                        }
                    }
                    Step::Client { pattern, .. } => {
                        sends |= pattern.text().to_ascii_uppercase().starts_with("MAIL FROM");
                    }
                    _ => {}
                }
            }
            Scenario {
                name: f.header.name.clone(),
                path,
                mode: f.header.mode,
                user: f.header.user.clone(),
                expect: f.header.expect.clone(),
                refusal,
                sends,
            }
        })
        .collect()
}

/// The text of one reply line without its code and enhanced code:
/// `534-5.7.9 Application-specific…` → `Application-specific…`.
fn reply_text(line: &str) -> String {
    let rest = line.get(4..).unwrap_or("").trim_start();
    let enhanced = rest.split(' ').next().unwrap_or("");
    let is_enhanced = enhanced.split('.').count() == 3
        && enhanced
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let text = if is_enhanced {
        &rest[enhanced.len()..]
    } else {
        rest
    };
    text.trim().to_string()
}

// ---------------------------------------------------------------------------------
// What the app saw.

/// One client run, in the words of `tests/clients/README.md`.
#[derive(Debug, Clone, Default)]
struct Outcome {
    /// sent, logged_in, auth_error, refused_tls, auth_not_offered, error
    outcome: String,
    stage: Option<String>,
    code: Option<u16>,
    message: String,
}

impl Outcome {
    fn from_json(v: &Value) -> Outcome {
        Outcome {
            outcome: v["outcome"].as_str().unwrap_or("?").to_string(),
            stage: v["stage"].as_str().map(str::to_string),
            code: v["code"].as_u64().and_then(|c| u16::try_from(c).ok()),
            message: v["message"].as_str().unwrap_or("").to_string(),
        }
    }

    fn short(&self) -> String {
        let mut s = self.outcome.clone();
        if let Some(st) = &self.stage {
            s += &format!(" at {st}");
        }
        if let Some(c) = self.code {
            s += &format!(" {c}");
        }
        s
    }
}

/// Which way a trace line went.
#[derive(PartialEq, Clone, Copy)]
enum Dir {
    Client,
    Server,
}

/// Splits a tool's conversation trace into (direction, line): curl `< `/`> `, msmtp
/// `<-- `/`--> `, swaks `<- `, `<~ `, `<** `, `<~* ` / ` -> `, ` ~> `.
fn trace(reads: Reads, out: &str) -> Vec<(Dir, String)> {
    let mut lines = Vec::new();
    for l in out.lines() {
        let t = l.trim_start();
        let Some((prefix, rest)) = t.split_once(' ') else {
            continue;
        };
        let dir = match reads {
            Reads::Curl | Reads::Msmtp => match prefix {
                "<" | "<--" => Dir::Server,
                ">" | "-->" => Dir::Client,
                _ => continue,
            },
            Reads::Swaks if prefix.starts_with('<') && prefix.len() <= 3 => Dir::Server,
            Reads::Swaks if prefix.ends_with('>') && prefix.len() <= 3 => Dir::Client,
            _ => continue,
        };
        if prefix.chars().all(|c| "<>-~*".contains(c)) {
            lines.push((dir, rest.trim_start().to_string()));
        }
    }
    lines
}

/// The first 4xx/5xx reply in a trace (before QUIT) and the stage of the command it
/// answered. Replies answer commands in order, so pipelined MAIL/RCPT/DATA (RFC 2920)
/// are matched one by one; AUTH continuation lines keep the stage of their AUTH, and
/// message lines get no reply of their own (the final one answers the message).
fn first_refusal(lines: &[(Dir, String)]) -> Option<(String, u16, String)> {
    let mut pending = std::collections::VecDeque::new();
    let mut last = "greeting";
    let mut text = Vec::new();
    for (dir, line) in lines {
        if *dir == Dir::Client {
            let verb = line
                .split([' ', ':'])
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            let stage = match verb.as_str() {
                "EHLO" | "HELO" => "ehlo",
                "STARTTLS" => "starttls",
                "AUTH" => "auth",
                "MAIL" => "mail",
                "RCPT" => "rcpt",
                "DATA" | "BDAT" => "data",
                "QUIT" => return None,
                _ if last == "data" && line != "." => continue,
                _ => last,
            };
            last = stage;
            pending.push_back(stage);
            continue;
        }
        text.push(line.clone());
        if line.as_bytes().get(3) == Some(&b'-') {
            continue; // RFC 5321 §4.2.1: more lines of this reply follow
        }
        let stage = pending.pop_front().unwrap_or(last);
        let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        if code >= 400 {
            return Some((stage.to_string(), code, text.join("\n")));
        }
        text.clear();
    }
    None
}

/// curl, swaks and msmtp: the exit status says whether the message went; the trace
/// says which reply refused it. Tool messages are used only where no reply refused
/// anything (the tool stopped on its own: STARTTLS or AUTH not offered, a TLS error).
fn classify_tool(reads: Reads, status: Option<ExitStatus>, out: &str, login: bool) -> Outcome {
    let exit = status.and_then(|s| s.code());
    if exit == Some(0) {
        let outcome = if login { "logged_in" } else { "sent" };
        return Outcome {
            outcome: outcome.into(),
            ..Outcome::default()
        };
    }
    let said = |needle: &str| out.contains(needle);
    let (outcome, stage, code, message) = match first_refusal(&trace(reads, out)) {
        Some((stage, code, text)) => {
            let outcome = match stage.as_str() {
                "auth" => "auth_error",
                "starttls" => "refused_tls",
                _ => "error",
            };
            let stage = (outcome == "error").then_some(stage);
            (outcome, stage, Some(code), text)
        }
        None => {
            let (outcome, stage) = match reads {
                // CURLE_USE_SSL_FAILED: "STARTTLS not supported."
                Reads::Curl if exit == Some(64) => ("refused_tls", None),
                // CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION
                Reads::Curl if matches!(exit, Some(35 | 60)) => ("error", Some("tls")),
                Reads::Swaks if said("Host did not advertise STARTTLS") => ("refused_tls", None),
                Reads::Swaks if said("Host did not advertise authentication") => {
                    ("auth_not_offered", None)
                }
                Reads::Swaks if exit == Some(29) => ("error", Some("tls")),
                Reads::Msmtp if said("does not support TLS via the STARTTLS") => {
                    ("refused_tls", None)
                }
                Reads::Msmtp if said("does not support authentication") => {
                    ("auth_not_offered", None)
                }
                Reads::Msmtp if said("TLS") && said("msmtp: ") => ("error", Some("tls")),
                _ => ("error", Some("closed")),
            };
            let last = out
                .lines()
                .rev()
                .find(|l| l.starts_with("curl:") || l.starts_with("msmtp:") || l.starts_with("***"))
                .unwrap_or("")
                .to_string();
            (outcome, stage.map(str::to_string), None, last)
        }
    };
    Outcome {
        outcome: outcome.into(),
        stage,
        code,
        message,
    }
}

// ---------------------------------------------------------------------------------
// Processes with deadlines.

/// A child whose stdout lines arrive on a channel and whose stderr is collected; it is
/// killed when dropped, so no run outlives its deadline.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

/// Sends every line of a pipe to a channel, from a thread of its own.
fn pump(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(pipe).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// What a channel has until it closes or the deadline passes (a grandchild may keep a
/// pipe open after the child exited).
fn drain(rx: &mpsc::Receiver<String>, deadline: Instant) -> Vec<String> {
    std::iter::from_fn(|| {
        rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()
    })
    .collect()
}

impl Proc {
    fn spawn(cmd: &mut Command) -> std::io::Result<Proc> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let lines = pump(child.stdout.take().unwrap());
        let stderr = pump(child.stderr.take().unwrap());
        Ok(Proc {
            child,
            lines,
            stderr,
        })
    }

    /// The next stdout line, or None at EOF or the deadline.
    fn line(&self, deadline: Instant) -> Option<String> {
        self.lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()
    }

    /// Waits for the exit until the deadline (then kills it: status None), and returns
    /// the remaining stdout lines and the stderr.
    fn finish(&mut self, deadline: Instant) -> (Option<ExitStatus>, Vec<String>, String) {
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        let after = Instant::now() + Duration::from_secs(2);
        let out = drain(&self.lines, after);
        let err = drain(&self.stderr, after).join("\n");
        (status, out, err)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------
// One pair.

/// serve's verdict on one connection.
struct Verdict {
    passed: bool,
    delivered: bool,
    findings: Vec<String>,
    exit: Option<i32>,
}

struct Run {
    app: Result<Outcome, String>,
    serve: Result<Verdict, String>,
}

/// What a run changes in the app's configuration, to prove that serve and the test
/// can tell a careless app from a careful one.
#[derive(Default, Clone, Copy)]
struct Twist<'a> {
    /// The CA file the client trusts instead of serve's.
    trust: Option<&'a Path>,
    /// `SMTP_SECURITY` instead of the fixture's mode (`opportunistic`).
    security: Option<&'static str>,
    /// Send a message even when the scenario is login-only.
    send: bool,
    /// More arguments for serve (`--certificate wrong-name`).
    serve_args: &'static [&'static str],
}

impl Twist<'_> {
    fn serving(serve_args: &'static [&'static str]) -> Self {
        Twist {
            serve_args,
            ..Twist::default()
        }
    }
}

/// Runs one client against serve playing one scenario.
fn run_pair(s: &Scenario, c: &Client, twist: Twist) -> Run {
    let trust = twist.trust;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let start = Instant::now();
    let deadline = start + CLIENT_DEADLINE;
    let serve = Proc::spawn(
        Command::new(env!("CARGO_BIN_EXE_smtprobe"))
            .arg("serve")
            .arg(&s.path)
            .args(["--listen", "127.0.0.1:0", "--once", "--json"])
            .args(["--accept-timeout", "30", "--timeout", "10"])
            .args(twist.serve_args)
            .arg("--ca-out")
            .arg(&ca),
    );
    let mut serve = match serve {
        Ok(p) => p,
        Err(e) => return failed_run(format!("serve did not start: {e}")),
    };
    let listening = serve.line(start + Duration::from_secs(10));
    let port = listening
        .as_deref()
        .and_then(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "listening")
        .and_then(|v| v["address"].as_str()?.parse::<std::net::SocketAddr>().ok())
        .map(|a| a.port());
    let Some(port) = port else {
        let (_, _, err) = serve.finish(Instant::now());
        return failed_run(format!(
            "serve printed no listening event: first line {listening:?}, stderr {}",
            err.trim()
        ));
    };

    let login = c.login_only && !s.sends && !twist.send;
    let mut cmd = Command::new(c.program[0]);
    cmd.args(&c.program[1..])
        .current_dir(root())
        .env("SMTP_HOST", "localhost")
        .env("SMTP_PORT", port.to_string())
        .env(
            "SMTP_SECURITY",
            twist.security.unwrap_or(match s.mode {
                TlsMode::Starttls => "starttls",
                TlsMode::Implicit => "tls",
                TlsMode::None => "none",
            }),
        )
        .env("SMTP_USER", s.user.as_deref().unwrap_or(""))
        .env("SMTP_PASSWORD", PASSWORD)
        // The login name is the sender when it is an address (`apikey`, an AWS key id
        // are not).
        .env(
            "MAIL_FROM",
            s.user
                .as_deref()
                .filter(|u| u.contains('@'))
                .unwrap_or("app@example.com"),
        )
        .env("MAIL_TO", RECIPIENT)
        .env("SMTP_ACTION", if login { "login" } else { "send" })
        // Each library trusts the CA its usual way, and only it: OpenSSL's SSL_CERT_FILE
        // (Python, PHP), NODE_EXTRA_CA_CERTS (Node), a flag for the tools.
        .env("SSL_CERT_FILE", trust.unwrap_or(&ca))
        .env("NODE_EXTRA_CA_CERTS", trust.unwrap_or(&ca))
        .env("SMTP_CA", trust.unwrap_or(&ca))
        .env("NODE_PATH", root().join(".ci/node_modules"));
    let mut client = match Proc::spawn(&mut cmd) {
        Ok(p) => p,
        Err(e) => return failed_run(format!("{} did not start: {e}", c.program[0])),
    };
    let (status, out, err) = client.finish(deadline);
    let app = match (status, c.reads) {
        (None, _) => Err(format!(
            "{} did not finish in {}s (killed)",
            c.name,
            CLIENT_DEADLINE.as_secs()
        )),
        (Some(_), Reads::Json) => out
            .iter()
            .rev()
            .find_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| Outcome::from_json(&v))
            .ok_or_else(|| {
                format!(
                    "{} printed no JSON line: stdout {:?}, stderr {:?}",
                    c.name,
                    out.join("\n"),
                    tail(&err)
                )
            }),
        (Some(_), reads) => Ok(classify_tool(
            reads,
            status,
            &format!("{}\n{}", out.join("\n"), err),
            login,
        )),
    };

    let (exit, rest, serve_err) = serve.finish(Instant::now() + Duration::from_secs(15));
    let verdict = rest
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "connection");
    let serve = match verdict {
        None => Err(format!(
            "serve printed no connection object (exit {:?}): {}",
            exit.and_then(|s| s.code()),
            tail(&serve_err)
        )),
        Some(v) => Ok(Verdict {
            passed: v["passed"].as_bool().unwrap_or(false),
            delivered: v["result_delivered"].as_bool().unwrap_or(false),
            findings: v["findings"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|f| f["rule"].as_str().unwrap_or("?").to_string())
                        .collect()
                })
                .unwrap_or_default(),
            exit: exit.and_then(|s| s.code()),
        }),
    };
    Run { app, serve }
}

fn failed_run(why: String) -> Run {
    Run {
        app: Err(why.clone()),
        serve: Err(why),
    }
}

/// The last lines of a process's stderr, for a failure message.
fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

// ---------------------------------------------------------------------------------
// The judgement.

/// Lowercase with runs of white space as one space, so a reply's text is found in a
/// library's message whatever its line joins.
fn norm(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn has_reply(got: &Outcome, s: &Scenario) -> Result<(), String> {
    let Some((code, text)) = &s.refusal else {
        return Err("the fixture has no refusal".into());
    };
    if got.code != Some(*code) {
        return Err(format!("code {:?}, want {code}", got.code));
    }
    if !norm(&got.message).contains(&norm(text)) {
        return Err(format!(
            "message {:?} lacks the server's text {text:?}",
            got.message
        ));
    }
    Ok(())
}

/// Where a library cannot show the app the fixture's result, what it does instead, and
/// why. Such an outcome is accepted (and listed under the matrix) only when it is
/// exactly that; serve's verdict is still asserted.
fn limitation(c: &Client, s: &Scenario, got: &Outcome) -> Option<&'static str> {
    let failing =
        |stage: Stage| matches!(&s.expect, Expect::Failure { stage: st, .. } if *st == stage);
    match c.name {
        // smtplib answers a non-2xx EHLO with HELO (ehlo_or_helo_if_needed), on a
        // connection the server closed after its 421 (RFC 5321 §3.8): the app sees
        // SMTPServerDisconnected, never the 421.
        "python-smtplib"
            if failing(Stage::Ehlo)
                && got.outcome == "error"
                && got.code.is_none()
                && got.message.starts_with("disconnected") =>
        {
            Some("smtplib retries HELO after the 421 to EHLO and sees the closed connection")
        }
        // nodemailer logs in only when the server offers AUTH (smtp-transport checks
        // `allowsAuth`): with none on offer, verify() succeeds without a login.
        "nodemailer" if s.mode == TlsMode::None && got.outcome == "logged_in" => {
            Some("nodemailer skips AUTH when none is offered; verify() succeeds without a login")
        }
        // curl authenticates only when the server lists a mechanism (lib/curl_sasl.c); with
        // none it goes straight to MAIL, which the provider refuses the same way (Gmail:
        // 530 5.7.0 "Must issue a STARTTLS command first").
        "curl"
            if s.mode == TlsMode::None
                && got.outcome == "error"
                && got.stage.as_deref() == Some("mail")
                && has_reply(got, s).is_ok() =>
        {
            Some("curl skips AUTH when none is offered and reports the refusal of MAIL")
        }
        _ => None,
    }
}

/// What is wrong with this pair (empty: it passes).
fn judge(s: &Scenario, c: &Client, run: &Run) -> (Vec<String>, Option<&'static str>) {
    let mut wrong = Vec::new();
    let mut limited = None;
    // Whether the client sent credentials in clear text, which serve must flag.
    let mut insecure = false;
    match &run.app {
        Err(e) => wrong.push(format!("app: {e}")),
        Ok(got) => {
            let want_stage = |stage: &str| -> Result<(), String> {
                if got.outcome == "error" && got.stage.as_deref() == Some(stage) {
                    has_reply(got, s)
                } else {
                    Err(format!("want error at {stage}"))
                }
            };
            let verdict = match &s.expect {
                Expect::Ok => {
                    let want = if s.sends || !c.login_only {
                        "sent"
                    } else {
                        "logged_in"
                    };
                    if got.outcome == want {
                        Ok(())
                    } else {
                        Err(format!("want {want}"))
                    }
                }
                // `mode: none`, AUTH not offered before STARTTLS: a client that checks
                // the EHLO list refuses to log in; one that tries anyway gets the
                // provider's 530 (and has sent the password in clear text).
                Expect::Failure { stage, .. }
                    if *stage == Stage::Auth && s.mode == TlsMode::None =>
                {
                    match got.outcome.as_str() {
                        "auth_not_offered" => Ok(()),
                        "auth_error" => {
                            insecure = true;
                            has_reply(got, s)
                        }
                        _ => Err("want auth_not_offered (or the provider's refusal)".into()),
                    }
                }
                Expect::Failure { stage, .. } if *stage == Stage::Auth => {
                    if got.outcome == "auth_error" {
                        has_reply(got, s)
                    } else {
                        Err("want auth_error".into())
                    }
                }
                Expect::Failure { code, .. } if code == "starttls.not-offered" => {
                    if got.outcome == "refused_tls" {
                        Ok(())
                    } else {
                        Err("want refused_tls: never go on in clear text".into())
                    }
                }
                // Bytes injected after the 220 (RFC 3207 §5): any failure will do, as
                // long as the client neither logs in nor sends.
                Expect::Failure { stage, .. } if *stage == Stage::Starttls => {
                    if matches!(got.outcome.as_str(), "sent" | "logged_in" | "auth_error") {
                        Err("want the client to stop before AUTH".into())
                    } else {
                        Ok(())
                    }
                }
                Expect::Failure { stage, .. } => want_stage(&stage.to_string()),
            };
            limited = verdict.is_err().then(|| limitation(c, s, got)).flatten();
            if let (Err(e), None) = (verdict, limited) {
                wrong.push(format!("app saw {}: {e}", got.short()));
            }
        }
    }
    match &run.serve {
        Err(e) => wrong.push(format!("serve: {e}")),
        Ok(v) => {
            if !v.delivered {
                wrong.push("serve: result_delivered is false".into());
            }
            if v.passed == insecure {
                wrong.push(format!(
                    "serve: passed is {}, want {} (findings: {})",
                    v.passed,
                    !insecure,
                    v.findings.join(", ")
                ));
            }
            if v.exit != Some(if v.passed { 0 } else { 1 }) {
                wrong.push(format!(
                    "serve: exit {:?} disagrees with passed={}",
                    v.exit, v.passed
                ));
            }
        }
    }
    (wrong, limited)
}

// ---------------------------------------------------------------------------------
// The matrix.

/// `f` over every item, `PARALLEL` at a time, results in the items' order.
fn bounded<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                results.lock().unwrap()[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

/// The clients installed here. With `CI` set a missing one fails the test, naming its
/// package; without, it is reported as skipped.
fn installed_clients() -> Vec<&'static Client> {
    let ci = std::env::var_os("CI").is_some();
    let mut clients = Vec::new();
    let mut missing = Vec::new();
    for c in CLIENTS {
        match (c.needs)() {
            Ok(()) => clients.push(c),
            Err(why) if ci => missing.push(format!("{}: {why}", c.name)),
            Err(why) => println!("clients: skipped: {}: {why}", c.name),
        }
    }
    assert!(
        missing.is_empty(),
        "CI is set and clients are missing (.ci/apt-packages.txt, .ci/package.json):\n{}",
        missing.join("\n")
    );
    clients
}

/// Certificate verification is really on in every client program, and serve's
/// certificate modes test it: each client fails at TLS, sending nothing (swaks excepted:
/// it checks no host name), when
/// - it is given another CA than serve's: serve cannot tell, and sees no result;
/// - serve presents a broken certificate (`--certificate wrong-name|expired|untrusted`):
///   refusing it *is* the scenario's result, so serve passes the app (a client that
///   logged in anyway would fail with `accepted-bad-certificate`).
#[test]
fn every_client_refuses_a_certificate_it_does_not_trust() {
    let clients = installed_clients();
    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("other-ca.pem");
    let pki = smtprobe::replay::TestPki::generate(&["localhost"]).unwrap();
    std::fs::write(&other_ca, pki.ca_pem()).unwrap();
    let all = scenarios();
    let picks = ["gmail-587-plain-send-ok", "gmail-465-login-ok"];
    let cases: [(&str, Twist); 4] = [
        (
            "another CA",
            Twist {
                trust: Some(&other_ca),
                ..Twist::default()
            },
        ),
        (
            "wrong-name",
            Twist::serving(&["--certificate", "wrong-name"]),
        ),
        ("expired", Twist::serving(&["--certificate", "expired"])),
        ("untrusted", Twist::serving(&["--certificate", "untrusted"])),
    ];
    let mut jobs = Vec::new();
    for c in &clients {
        for s in all.iter().filter(|s| picks.contains(&s.name.as_str())) {
            for case in &cases {
                jobs.push((*c, s, case));
            }
        }
    }
    let runs = bounded(&jobs, |(c, s, (_, twist))| run_pair(s, c, *twist));
    let mut wrong = Vec::new();
    for ((c, s, (case, twist)), run) in jobs.iter().zip(runs) {
        let pair = format!("{} × {} × {case}", c.name, s.name);
        // swaks 20201014 (Debian 12): --tls-verify checks the chain only
        // (Net::SSLeay::CTX_set_verify), never the host name.
        let accepts = c.name == "swaks" && *case == "wrong-name";
        let app = match &run.app {
            Ok(o) if !accepts && o.outcome == "error" && o.stage.as_deref() == Some("tls") => {
                Ok(())
            }
            Ok(o) if accepts && matches!(o.outcome.as_str(), "sent" | "logged_in") => Ok(()),
            Ok(o) => Err(format!(
                "the app saw {}, want {}",
                o.short(),
                if accepts {
                    "success (swaks checks no host name)"
                } else {
                    "error at tls"
                }
            )),
            Err(e) => Err(e.clone()),
        };
        let verdict = match &run.serve {
            Ok(v) if twist.trust.is_some() => match v.delivered {
                true => Err(
                    "serve delivered its result over a certificate the client does not trust"
                        .into(),
                ),
                false => Ok(()),
            },
            Ok(v) if accepts => {
                match !v.passed && v.findings.iter().any(|f| f == "accepted-bad-certificate") {
                    true => Ok(()),
                    false => Err(format!(
                        "passed {}, want a failure with accepted-bad-certificate (findings: {})",
                        v.passed,
                        v.findings.join(", ")
                    )),
                }
            }
            Ok(v) if !v.passed => Err(format!(
                "failed an app that refused a bad certificate (findings: {})",
                v.findings.join(", ")
            )),
            Ok(_) => Ok(()),
            Err(e) => Err(e.clone()),
        };
        println!(
            "{pair:<50} app: {}; serve: {}",
            app.as_ref().err().map_or("right", String::as_str),
            verdict.as_ref().err().map_or("right", String::as_str),
        );
        wrong.extend(app.err().map(|e| format!("{pair}: app: {e}")));
        wrong.extend(verdict.err().map(|e| format!("{pair}: serve: {e}")));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// serve's verdict can fail an app: nodemailer at its default for port 587 and curl
/// with `--ssl` use STARTTLS only when offered. When a middlebox strips the offer they
/// skip the login (no AUTH is listed before TLS) and go on to MAIL in clear text. serve,
/// like Gmail, answers 530 (RFC 3207 §4: "Must issue a STARTTLS command first") and
/// must fail that connection (`mail-without-tls`); the same configuration sends and
/// passes when STARTTLS is offered.
#[test]
fn serve_fails_an_app_that_goes_on_without_starttls() {
    let clients: Vec<&Client> = installed_clients()
        .into_iter()
        .filter(|c| matches!(c.name, "nodemailer" | "curl"))
        .collect();
    let all = scenarios();
    let picks = ["gmail-587-starttls-stripped", "gmail-587-plain-send-ok"];
    let jobs: Vec<(&Client, &Scenario)> = clients
        .iter()
        .flat_map(|c| {
            all.iter()
                .filter(|s| picks.contains(&s.name.as_str()))
                .map(move |s| (*c, s))
        })
        .collect();
    let twist = Twist {
        security: Some("opportunistic"),
        send: true,
        ..Twist::default()
    };
    let runs = bounded(&jobs, |(c, s)| run_pair(s, c, twist));
    let mut wrong = Vec::new();
    for ((c, s), run) in jobs.iter().zip(runs) {
        let stripped =
            matches!(&s.expect, Expect::Failure { code, .. } if code == "starttls.not-offered");
        let app = run.app.as_ref().map_or_else(Clone::clone, Outcome::short);
        let (passed, findings) = match &run.serve {
            Ok(v) => (Some(v.passed), v.findings.join(", ")),
            Err(e) => (None, e.clone()),
        };
        println!(
            "{:<15} {:<30} opportunistic → app {app}, serve passed {passed:?} [{findings}]",
            c.name, s.name
        );
        let want = if stripped {
            "error at mail 530"
        } else {
            "sent"
        };
        if app != want {
            wrong.push(format!(
                "{} × {}: the app saw {app}, want {want}",
                c.name, s.name
            ));
        }
        if passed != Some(!stripped) {
            wrong.push(format!(
                "{} × {}: serve passed {passed:?}, want {} [{findings}]",
                c.name, s.name, !stripped
            ));
        }
        if stripped && !findings.contains("mail-without-tls") {
            wrong.push(format!(
                "{} × {}: no mail-without-tls finding [{findings}]",
                c.name, s.name
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_fixture_with_every_client() {
    let scenarios = scenarios();
    let clients = installed_clients();

    let jobs: Vec<(&Scenario, &Client)> = scenarios
        .iter()
        .flat_map(|s| clients.iter().map(move |c| (s, *c)))
        .collect();
    let results = bounded(&jobs, |(s, c)| {
        let run = run_pair(s, c, Twist::default());
        let judged = judge(s, c, &run);
        (run, judged)
    });

    println!("\nclient × fixture → app result / serve verdict");
    let mut failures = Vec::new();
    let mut limits = Vec::new();
    for ((s, c), (run, (wrong, limited))) in jobs.iter().zip(&results) {
        let app = match &run.app {
            Ok(o) => o.short(),
            Err(_) => "no result".into(),
        };
        let serve = match &run.serve {
            Ok(v) => format!(
                "{}{}{}",
                if v.passed { "passed" } else { "FAILED" },
                if v.delivered { "" } else { ", not delivered" },
                if v.findings.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", v.findings.join(", "))
                }
            ),
            Err(_) => "no verdict".into(),
        };
        let mark = match (wrong.is_empty(), limited) {
            (false, _) => "WRONG",
            (true, Some(why)) => {
                limits.push(format!("{} × {}: {why}", c.name, s.name));
                "ok*  "
            }
            (true, None) => "ok   ",
        };
        println!("{mark} {:<15} {:<38} {:<28} {serve}", c.name, s.name, app);
        if !wrong.is_empty() {
            failures.push(format!("{} × {}: {}", c.name, s.name, wrong.join("; ")));
        }
    }

    // The grid: one row per fixture, one column per client.
    print!("\n{:<38}", "");
    for c in &clients {
        print!(" {:<14}", c.name);
    }
    println!();
    for (si, s) in scenarios.iter().enumerate() {
        print!("{:<38}", s.name);
        for ci in 0..clients.len() {
            let (wrong, limited) = &results[si * clients.len() + ci].1;
            let cell = match (wrong.is_empty(), limited) {
                (false, _) => "WRONG",
                (true, Some(_)) => "ok*",
                (true, None) => "ok",
            };
            print!(" {cell:<14}");
        }
        println!();
    }
    if !limits.is_empty() {
        println!("\nok*: the library cannot show the fixture's result; what it does instead:");
        for l in &limits {
            println!("  {l}");
        }
    }
    let total = jobs.len();
    let right = |side: &str| {
        results
            .iter()
            .filter(|(_, (wrong, _))| !wrong.iter().any(|w| w.starts_with(side)))
            .count()
    };
    println!(
        "\nclients matrix: {}/{total} pairs pass ({} clients × {} fixtures); \
         the app saw the right result in {}/{total}, serve's verdict was right in {}/{total}",
        total - failures.len(),
        clients.len(),
        scenarios.len(),
        right("app"),
        right("serve"),
    );
    assert!(
        failures.is_empty(),
        "{} of {total} client × fixture pairs are wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
