//! Redaction proof: sessions with sentinel credentials (PLAIN, LOGIN, XOAUTH2) through
//! every output path — human, `--json`, `--annotate`, `-vvv` and `RUST_LOG=trace`
//! tracing, `--record` fixture files, the replay server's log, error paths (bad
//! credentials, protocol violation, STARTTLS injection, TLS failure, input injection),
//! the library's report (text, JSON, `Debug`) and a panic message built from `Debug` of
//! the configuration — and a search of all of it for the secrets in every encoding a
//! client could leak them in.

use crate::common::*;
use smtprobe::replay::ServerCert;
use smtprobe::{AuthChoice, AuthConfig, Credential};
use std::path::PathBuf;
use std::time::Duration;

const USER: &str = "sentinel@example.com";
const PASSWORD: &str = "S3ntinel-Pa55-ZZ";
const TOKEN: &str = "ya29.S3ntinel-T0ken-QQ";

/// The password and token raw, and every base64 form they travel in
/// (`common::secrets`).
fn sentinels() -> Vec<Needle> {
    needles(USER, PASSWORD, Some(TOKEN))
}

/// Everything smtprobe wrote somewhere, labelled by where it came from.
#[derive(Default)]
struct Outputs(Vec<(String, Vec<u8>)>);

impl Outputs {
    fn add(&mut self, label: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.0.push((label.into(), bytes.into()));
    }

    fn add_run(&mut self, label: &str, out: &std::process::Output) {
        self.add(format!("{label}: stdout"), out.stdout.clone());
        self.add(format!("{label}: stderr"), out.stderr.clone());
    }
}

fn env() -> Vec<(&'static str, String)> {
    vec![
        ("SMTPROBE_PASSWORD", PASSWORD.to_owned()),
        ("SENTINEL_TOKEN", TOKEN.to_owned()),
    ]
}

/// The three ways of running one scenario: human with `-vvv` tracing and `--record`;
/// `--json` with `-vvv` and `--record`; `--annotate` with `RUST_LOG=trace` (every
/// crate's tracing, rustls included).
const MODES: [&str; 3] = ["human", "json", "annotate"];

struct Scenario {
    name: &'static str,
    /// The server, as fixture steps (`common::fixture_server`); each mode run plays it
    /// on its own connection.
    script: fn() -> String,
    cert: ServerCert,
    flags: &'static [&'static str],
    /// Exit code expected, so each scenario really went down its path.
    exit: i32,
}

fn starttls_to_auth(caps_tls: &str, rest: &str) -> String {
    format!(
        "# user: {USER}
         S: 220 mx.test ESMTP
         C: EHLO {{any}}
         S: 250-mx.test
         S: 250 STARTTLS
         C: STARTTLS
         S: 220 go ahead
         * TLS
         C: EHLO {{any}}
         {caps_tls}
         {rest}"
    )
}

fn plain_ok() -> String {
    starttls_to_auth(
        "S: 250-mx.test\nS: 250 AUTH PLAIN LOGIN",
        "C: AUTH PLAIN <redacted: user sentinel@example.com>
         S: 235 2.7.0 Accepted
         C: MAIL FROM:{any}
         S: 250 ok
         C: RCPT TO:{any}
         S: 250 ok
         C: DATA
         S: 354 go
         C: <message>
         S: 250 queued
         C: QUIT
         S: 221 bye",
    )
}

/// LOGIN up to the server's answer to the password (RFC 4954 §4, the prompts base64).
const LOGIN_EXCHANGE: &str = "C: AUTH LOGIN
     S: 334 VXNlcm5hbWU6
     C: <redacted username>
     S: 334 UGFzc3dvcmQ6
     C: <redacted password>";

fn login_bad_credentials() -> String {
    starttls_to_auth(
        "S: 250-mx.test\nS: 250 AUTH LOGIN",
        &format!(
            "{LOGIN_EXCHANGE}
             S: 535 5.7.8 Username and Password not accepted
             C: QUIT
             S: 221 bye"
        ),
    )
}

fn xoauth2_rejected() -> String {
    starttls_to_auth(
        "S: 250-mx.test\nS: 250 AUTH XOAUTH2 PLAIN",
        // The 334 is base64 of Google's error JSON; the client answers it with an
        // empty line.
        "C: AUTH XOAUTH2 <redacted: token for user sentinel@example.com>
         S: 334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==
         C:
         S: 535-5.7.8 Username and Password not accepted.
         S: 535 5.7.8 https://support.google.com/mail/?p=BadCredentials
         C: QUIT
         S: 221 bye",
    )
}

fn plain_protocol_violation() -> String {
    starttls_to_auth(
        "S: 250-mx.test\nS: 250 AUTH PLAIN",
        "C: AUTH PLAIN <redacted: user sentinel@example.com>
         S: 334\\x20
         C: *
         S: 501 cancelled
         C: QUIT
         S: 221 bye",
    )
}

fn login_third_prompt() -> String {
    starttls_to_auth(
        "S: 250-mx.test\nS: 250 AUTH LOGIN",
        &format!(
            "{LOGIN_EXCHANGE}
             S: 334 UGFzc3dvcmQ6
             C: *
             S: 501 cancelled
             C: QUIT
             S: 221 bye"
        ),
    )
}

fn starttls_injection() -> String {
    // A 235 injected in the same write as the 220 to STARTTLS; then the server only
    // listens (and records) what the client sends.
    "S: 220 mx.test ESMTP
     C: EHLO {any}
     S: 250-mx.test
     S: 250-AUTH PLAIN
     S: 250 STARTTLS
     C: STARTTLS
     S: 220 go
     S: 235 2.7.0 fine, send it
     * silence"
        .into()
}

fn plaintext_lab_plain() -> String {
    "S: 220 lab ESMTP
     C: EHLO {any}
     S: 250-lab
     S: 250 AUTH PLAIN LOGIN
     C: AUTH PLAIN <redacted: user sentinel@example.com>
     S: 535 5.7.8 no
     C: QUIT
     S: 221 bye"
        .into()
}

/// Issue 13: CRAM-MD5 (the password taken by --password-command) refused.
fn cram_md5_bad_credentials() -> String {
    // The client's answer to the challenge is the HMAC digest line (RFC 2195 §2).
    starttls_to_auth(
        "S: 250-mx.test\nS: 250 AUTH CRAM-MD5",
        "C: AUTH CRAM-MD5
         S: 334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+
         C: {any}
         S: 535 5.7.8 authentication failed
         C: QUIT
         S: 221 bye",
    )
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "CRAM-MD5 bad credentials, password from a command",
            script: cram_md5_bad_credentials,
            cert: ServerCert::Valid,
            flags: &[
                "--auth",
                "cram-md5",
                "--password-command",
                "printenv SMTPROBE_PASSWORD",
            ],
            exit: 6,
        },
        Scenario {
            name: "PLAIN ok with a test message",
            script: plain_ok,
            cert: ServerCert::Valid,
            flags: &["--from", "sentinel@example.com", "--to", "x@example.org"],
            exit: 0,
        },
        Scenario {
            name: "LOGIN bad credentials",
            script: login_bad_credentials,
            cert: ServerCert::Valid,
            flags: &["--auth", "login"],
            exit: 6,
        },
        Scenario {
            name: "LOGIN third prompt",
            script: login_third_prompt,
            cert: ServerCert::Valid,
            flags: &["--auth", "login"],
            exit: 6,
        },
        Scenario {
            name: "XOAUTH2 rejected",
            script: xoauth2_rejected,
            cert: ServerCert::Valid,
            flags: &["--oauth2-token-env", "SENTINEL_TOKEN"],
            exit: 6,
        },
        Scenario {
            name: "PLAIN protocol violation",
            script: plain_protocol_violation,
            cert: ServerCert::Valid,
            flags: &[],
            exit: 6,
        },
        Scenario {
            name: "STARTTLS injection",
            script: starttls_injection,
            cert: ServerCert::Valid,
            flags: &[],
            exit: 4,
        },
        Scenario {
            name: "untrusted certificate",
            script: plain_ok,
            cert: ServerCert::SelfSigned,
            flags: &[],
            exit: 4,
        },
        Scenario {
            name: "plaintext lab server",
            script: plaintext_lab_plain,
            cert: ServerCert::Valid,
            flags: &["--tls", "none", "--allow-plaintext-auth"],
            exit: 6,
        },
    ]
}

async fn run_scenarios(out: &mut Outputs, dir: &std::path::Path) {
    let mut set = tokio::task::JoinSet::new();
    for sc in scenarios() {
        for mode in MODES {
            let cert = smtprobe::fixture::cert_mode_name(sc.cert);
            let script = format!("# certificate: {cert}\n{}", (sc.script)());
            let server = FixtureServer::start(&[&script]).await;
            let mut a = args(&server, &server.ca, &["--user", USER]);
            set_timeout(&mut a, "2");
            a.extend(sc.flags.iter().map(|s| s.to_string()));
            let mut e = env();
            let record: PathBuf = dir.join(format!("{}-{mode}.fixture", sc.name.replace(' ', "-")));
            match mode {
                "human" => a.extend([
                    "-vvv".into(),
                    "--record".into(),
                    record.display().to_string(),
                ]),
                "json" => a.extend([
                    "--json".into(),
                    "-vvv".into(),
                    "--record".into(),
                    record.display().to_string(),
                ]),
                _ => {
                    a.push("--annotate".into());
                    e.push(("RUST_LOG", "trace".into()));
                }
            }
            let (name, exit) = (sc.name, sc.exit);
            set.spawn(async move {
                let o = smtprobe(a, e).await;
                let recorded = std::fs::read(&record).ok();
                (format!("{name} ({mode})"), exit, o, recorded, server)
            });
        }
    }
    let mut records = 0;
    let mut wire = Vec::new();
    while let Some(r) = set.join_next().await {
        let (label, exit, o, recorded, server) = r.unwrap();
        assert_eq!(
            o.status.code(),
            Some(exit),
            "{label}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        if label.ends_with("(human)") || label.ends_with("(json)") {
            let text = recorded.unwrap_or_else(|| panic!("{label}: no fixture recorded"));
            records += 1;
            out.add(format!("{label}: recorded fixture"), text);
        }
        out.add_run(&label, &o);
        // The server is the one place the credentials must reach (inside TLS): proof
        // that the sentinels were really in play, so the search is not vacuous.
        let seen = server.seen_when_ended(Duration::from_secs(3)).await;
        wire.extend(seen.lines);
    }
    assert_eq!(records, 2 * scenarios().len());
    let n = sentinels();
    for what in [
        "password: LOGIN payload",
        "password: PLAIN payload",
        "token: XOAUTH2 payload",
    ] {
        assert!(
            wire.iter().any(|l| l.contains(needle(&n, what))),
            "the {what} never reached the server: {wire:?}"
        );
    }
}

/// The replay server (`smtprobe serve`) logs deviations: a client that sends PLAIN where
/// the fixture wants LOGIN must not have its PLAIN payload printed.
async fn run_serve(out: &mut Outputs, dir: &std::path::Path) {
    let fixture = dir.join("serve.fixture");
    std::fs::write(
        &fixture,
        format!(
            "# name: serve-redaction
# story: LOGIN expected, the client sends PLAIN
# host: localhost
# port: 587
# mode: starttls
# user: {USER}
# expect: auth auth.bad-credentials

S: 220 localhost ESMTP
C: EHLO {{any}}
S: 250-localhost
S: 250 STARTTLS
C: STARTTLS
S: 220 go
* TLS
C: EHLO {{any}}
S: 250-localhost
S: 250 AUTH PLAIN LOGIN
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: <redacted username>
S: 334 UGFzc3dvcmQ6
C: <redacted password>
S: 535 5.7.8 no
C: QUIT
S: 221 bye
"
        ),
    )
    .unwrap();
    // Strict (lock-step) and server mode, each with `-vvv` so the server's debug log
    // (every line it read, redacted where read) is searched too.
    for (label, auth, strict) in [
        ("serve --strict, client follows", "login", true),
        ("serve --strict, client deviates", "plain", true),
        ("serve, client uses LOGIN", "login", false),
        ("serve, client uses PLAIN", "plain", false),
    ] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let ca = dir.join(format!("serve-ca-{auth}-{strict}.pem"));
        let serve = std::process::Command::new(env!("CARGO_BIN_EXE_smtprobe"))
            .args([
                "serve",
                fixture.to_str().unwrap(),
                "--once",
                "--timeout",
                "3",
                "-vvv",
            ])
            .args(strict.then_some("--strict"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--ca-out", ca.to_str().unwrap()])
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        for _ in 0..200 {
            if ca.exists() && std::fs::metadata(&ca).unwrap().len() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let a: Vec<String> = [
            "check",
            "localhost",
            "--connect-to",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--helo",
            "client.test",
            "--timeout",
            "3",
            "--ca-file",
            ca.to_str().unwrap(),
            "--user",
            USER,
            "--auth",
            auth,
            "-vvv",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let o = smtprobe(a, env()).await;
        out.add_run(&format!("{label}: check"), &o);
        let served = tokio::task::spawn_blocking(move || serve.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        // Strict: only the LOGIN client follows the fixture. Server mode: both get the
        // fixture's 535, and neither breaks a rule.
        let want = if auth == "login" || !strict {
            Some(0)
        } else {
            Some(1)
        };
        assert_eq!(
            served.status.code(),
            want,
            "{label}: {}{}",
            String::from_utf8_lossy(&served.stdout),
            String::from_utf8_lossy(&served.stderr)
        );
        out.add_run(&format!("{label}: serve"), &served);
    }
}

/// `CR`/`LF` in the user name: refused before connecting; the error names the flag.
async fn run_injection(out: &mut Outputs) {
    let a: Vec<String> = [
        "check",
        "localhost",
        "--connect-to",
        "127.0.0.1",
        "--port",
        "9",
        "--user",
        "sentinel@example.com\r\nAUTH PLAIN x",
        "--json",
        "-vvv",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let o = smtprobe(a, env()).await;
    assert_eq!(o.status.code(), Some(2));
    out.add_run("input injection", &o);
    // --password on the command line (warned about) in an error path too.
    let a: Vec<String> = [
        "check",
        "localhost",
        "--connect-to",
        "127.0.0.1",
        "--port",
        "9",
        "--user",
        USER,
        "--password",
        PASSWORD,
        "--helo",
        "bad\nhelo",
        "-vvv",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let o = smtprobe(a, vec![]).await;
    assert_eq!(o.status.code(), Some(2));
    out.add_run("--password with a usage error", &o);
}

/// The library: the report of a check (rendered, JSON, `Debug`), and `Debug` of the
/// configuration inside a panic message.
async fn run_library(out: &mut Outputs) {
    for (label, credential, script) in [
        (
            "library PLAIN",
            Credential::Password {
                secret: smtprobe::Secret::new(PASSWORD),
                choice: AuthChoice::Plain,
            },
            plain_protocol_violation as fn() -> String,
        ),
        (
            "library XOAUTH2",
            Credential::OAuthToken(smtprobe::Secret::new(TOKEN)),
            xoauth2_rejected,
        ),
    ] {
        let server = FixtureServer::start(&[&script()]).await;
        let mut config = smtprobe::Config::new("localhost");
        config.port = Some(server.addr.port());
        config.connect_to = Some("127.0.0.1".parse().unwrap());
        config.tls = smtprobe::TlsChoice::Starttls;
        config.helo = Some("client.test".into());
        config.timeout = Duration::from_secs(2);
        config.extra_roots = vec![server.ca_der.clone()];
        config.auth = Some(AuthConfig {
            user: USER.into(),
            credential,
        });
        out.add(
            format!("{label}: Debug of Config"),
            format!("{config:?} {config:#?}"),
        );
        let auth = config.auth.clone().unwrap();
        out.add(
            format!("{label}: Debug/Display of AuthConfig and Credential"),
            format!("{auth:?} {:#?}", auth.credential),
        );
        let cfg = config.clone();
        let panic = std::panic::catch_unwind(move || panic!("check failed with {cfg:?}"))
            .expect_err("panics");
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .expect("a formatted panic message");
        assert!(
            message.contains("localhost"),
            "the panic carries the config"
        );
        out.add(format!("{label}: panic message"), message);

        let report = smtprobe::check(config).await.unwrap();
        assert_eq!(report.failed_stage, Some(smtprobe::Stage::Auth), "{label}");
        out.add(format!("{label}: report Debug"), format!("{report:?}"));
        out.add(
            format!("{label}: report JSON"),
            report.to_json().to_string(),
        );
        for annotate in [false, true] {
            let style = smtprobe::report::Style {
                annotate,
                ..smtprobe::report::Style::plain()
            };
            out.add(format!("{label}: report text"), report.render(style));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let mut out = Outputs::default();
    run_scenarios(&mut out, dir.path()).await;
    run_serve(&mut out, dir.path()).await;
    run_injection(&mut out).await;
    run_library(&mut out).await;

    // The outputs are real: the redacted forms the user relies on are there.
    let all: String = out
        .0
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect();
    for shown in [
        "AUTH PLAIN <redacted: user sentinel@example.com>",
        "<redacted password>",
        "AUTH XOAUTH2 <redacted: token for user sentinel@example.com>",
        "smtprobe::wire",
    ] {
        assert!(all.contains(shown), "no output shows {shown:?}");
    }

    let n = sentinels();
    let found: Vec<String> = out
        .0
        .iter()
        .flat_map(|(label, bytes)| leaks(label, bytes, &n))
        .collect();
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}
