//! `smtprobe check` end to end: the real binary against scripted servers on 127.0.0.1,
//! with STARTTLS and implicit TLS. Each server is a fixture played lock-step by the
//! replay server (`common::fixture_server`), which also checks that the probe sent
//! exactly the fixture's client lines.

use crate::common::*;
use smtprobe::replay::ServerCert;
use std::time::{Duration, Instant};

const PW: &str = "abcd efgh ijkl mnop";
/// base64("\0you@gmail.com\0abcd efgh ijkl mnop")
const PLAIN_B64: &str = "AHlvdUBnbWFpbC5jb20AYWJjZCBlZmdoIGlqa2wgbW5vcA==";

fn pw_env() -> Vec<(&'static str, String)> {
    vec![("SMTPROBE_PASSWORD", PW.to_string())]
}

fn no_secret(out: &std::process::Output) {
    assert_no_secret(out, &needles("you@gmail.com", PW, None));
}

/// The server received exactly this line (a credential line the fixture only has as a
/// placeholder: the test knows the sentinel password and checks its encoding).
fn received(server: &FixtureServer, line: &str) {
    let seen = server.seen();
    assert!(
        seen.lines.iter().any(|l| l == line),
        "the server never received {line:?}: {:?}",
        seen.results
    );
}

/// The probe followed the fixture to its end.
async fn followed(server: &FixtureServer) {
    let seen = server.seen_when_ended(Duration::from_secs(5)).await;
    assert!(seen.completed, "{:#?}", seen.results);
}

#[tokio::test]
async fn starttls_plain_success_json_shape_and_exit_code() {
    let server = FixtureServer::start(&[&gmail_starttls(
        "C: AUTH PLAIN <redacted: user you@gmail.com>
         S: 235 2.7.0 Accepted
         C: QUIT
         S: 221 2.0.0 closing connection",
    )])
    .await;
    let out = smtprobe(
        args(&server, &server.ca, &["--user", "you@gmail.com", "--json"]),
        pw_env(),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    followed(&server).await;
    received(&server, &format!("AUTH PLAIN {PLAIN_B64}"));
    let j = json(&out);
    assert_eq!(j["outcome"], "ok");
    assert_eq!(j["failed_stage"], serde_json::Value::Null);
    assert_eq!(j["diagnosis"]["code"], "ok");
    assert_eq!(j["reply"], serde_json::Value::Null);
    assert_eq!(j["tls"]["verified"], true);
    assert_eq!(j["tls"]["version"], "TLSv1.3");
    assert!(j["tls"]["certificate"]["sans"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "localhost"));
    let stages: Vec<&str> = j["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["dns", "connect", "greeting", "ehlo", "starttls", "tls", "ehlo", "auth", "quit"]
    );
    assert!(j["stages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["ok"] == true && s["ms"].is_number()));
    let transcript = j["transcript"].as_array().unwrap();
    assert!(transcript.iter().any(|e| e["dir"] == "C"
        && e["text"] == "AUTH PLAIN <redacted: user you@gmail.com>"
        && e["tls"] == true));
    assert!(transcript
        .iter()
        .any(|e| e["dir"] == "S" && e["text"] == "250-STARTTLS" && e["tls"] == false));
    assert_eq!(j["settings"]["port"], server.addr.port());
    assert_eq!(j["settings"]["security"], "starttls");
    assert_eq!(j["settings"]["mechanism"], "PLAIN");
    no_secret(&out);
}

#[tokio::test]
async fn implicit_tls_login_success_human_output() {
    let server = FixtureServer::start(&["
        # user: you@gmail.com
        * TLS
        S: 220 smtp.gmail.com ESMTP x - gsmtp
        C: EHLO {any}
        S: 250-smtp.gmail.com at your service
        S: 250 AUTH LOGIN PLAIN
        C: AUTH LOGIN
        S: 334 VXNlcm5hbWU6
        C: <redacted username>
        S: 334 UGFzc3dvcmQ6
        C: <redacted password>
        S: 235 2.7.0 Accepted
        C: QUIT
        S: 221 bye"])
    .await;
    let out = smtprobe(
        args(
            &server,
            &server.ca,
            &[
                "--tls",
                "implicit",
                "--user",
                "you@gmail.com",
                "--auth",
                "login",
            ],
        ),
        pw_env(),
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("✓ tls"), "{stdout}");
    assert!(stdout.contains("<redacted username>") && stdout.contains("<redacted password>"));
    assert!(stdout.contains("Working settings"), "{stdout}");
    assert!(stdout.contains("SSL/TLS"), "{stdout}");
    assert!(!stdout.contains("\x1b["), "no colour when not a terminal");
    received(&server, "eW91QGdtYWlsLmNvbQ==");
    received(&server, "YWJjZCBlZmdoIGlqa2wgbW5vcA==");
    no_secret(&out);
}

#[tokio::test]
async fn bad_credentials_exit_code_and_diagnosis() {
    let server = FixtureServer::start(&[&gmail_starttls(
        "C: AUTH PLAIN <redacted: user you@gmail.com>
         S: 535-5.7.8 Username and Password not accepted. For more information, go to
         S: 535 5.7.8  https://support.google.com/mail/?p=BadCredentials af79cd13be357 - gsmtp
         C: QUIT
         S: 221 2.0.0 closing connection",
    )])
    .await;
    let out = smtprobe(
        args(&server, &server.ca, &["--user", "you@gmail.com", "--json"]),
        pw_env(),
    )
    .await;
    assert_eq!(out.status.code(), Some(6));
    let j = json(&out);
    assert_eq!(j["outcome"], "failed");
    assert_eq!(j["failed_stage"], "auth");
    assert_eq!(j["reply"]["code"], 535);
    assert_eq!(j["reply"]["enhanced"], "5.7.8");
    assert_eq!(j["reply"]["lines"].as_array().unwrap().len(), 2);
    assert_eq!(j["diagnosis"]["code"], "auth.bad-credentials");
    followed(&server).await; // QUIT was sent after the failure
    no_secret(&out);
}

#[tokio::test]
async fn one_auth_attempt_no_fallback_to_login() {
    let server = FixtureServer::start(&[&gmail_starttls(
        "C: AUTH PLAIN <redacted: user you@gmail.com>
         S: 535 5.7.8 Error: authentication failed
         C: {any}
         S: 221 bye",
    )])
    .await;
    let out = smtprobe(
        args(&server, &server.ca, &["--user", "you@gmail.com"]),
        pw_env(),
    )
    .await;
    assert_eq!(out.status.code(), Some(6));
    let seen = server.seen();
    assert_eq!(
        seen.lines.iter().filter(|l| l.starts_with("AUTH")).count(),
        1
    );
    assert_eq!(seen.lines.last().map(String::as_str), Some("QUIT"));
}

#[tokio::test]
async fn untrusted_expired_and_wrong_name_certificates_fail_at_tls() {
    for (cert, code) in [
        (ServerCert::SelfSigned, "tls.untrusted-certificate"),
        (ServerCert::Expired, "tls.expired-certificate"),
        (ServerCert::WrongName, "tls.hostname-mismatch"),
    ] {
        let mode = smtprobe::fixture::cert_mode_name(cert);
        let server =
            FixtureServer::start(&[&format!("# certificate: {mode}\n{GMAIL_BEFORE_TLS}* TLS")])
                .await;
        let out = smtprobe(
            args(&server, &server.ca, &["--user", "you@gmail.com", "--json"]),
            pw_env(),
        )
        .await;
        assert_eq!(out.status.code(), Some(4), "{cert:?}");
        let j = json(&out);
        assert_eq!(j["failed_stage"], "tls", "{cert:?}");
        assert_eq!(j["diagnosis"]["code"], code, "{cert:?}");
        assert!(
            !server.seen().lines.iter().any(|l| l.starts_with("AUTH")),
            "no credentials after a failed handshake"
        );
    }
}

#[tokio::test]
async fn without_ca_file_the_test_ca_is_not_trusted() {
    let server = FixtureServer::start(&["* TLS"]).await;
    let out = smtprobe(
        args_without_ca(&server, &["--tls", "implicit", "--json"]),
        vec![],
    )
    .await;
    let j = json(&out);
    assert_eq!(j["diagnosis"]["code"], "tls.untrusted-certificate");
    assert!(j["diagnosis"]["evidence"].is_string() || j["diagnosis"]["summary"].is_string());
}

#[tokio::test]
async fn plaintext_auth_refused_without_flag_no_localhost_exemption() {
    let server = FixtureServer::start(&["
        S: 220 lab ESMTP
        C: EHLO {any}
        S: 250-lab
        S: 250 AUTH PLAIN LOGIN
        C: QUIT
        S: 221 bye"])
    .await;
    let out = smtprobe(
        args(
            &server,
            &server.ca,
            &["--tls", "none", "--user", "me", "--json"],
        ),
        pw_env(),
    )
    .await;
    assert_eq!(out.status.code(), Some(6));
    let j = json(&out);
    assert_eq!(j["diagnosis"]["code"], "auth.plaintext-refused");
    assert!(!server.seen().lines.iter().any(|l| l.starts_with("AUTH")));
}

#[tokio::test]
async fn plaintext_auth_allowed_with_flag() {
    let server = FixtureServer::start(&["
        S: 220 lab ESMTP
        C: EHLO {any}
        S: 250-lab
        S: 250 AUTH PLAIN LOGIN
        C: AUTH PLAIN <redacted: user me>
        S: 235 ok
        C: QUIT
        S: 221 bye"])
    .await;
    let out = smtprobe(
        args(
            &server,
            &server.ca,
            &["--tls", "none", "--user", "me", "--allow-plaintext-auth"],
        ),
        vec![("SMTPROBE_PASSWORD", "s3cret".into())],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    received(&server, "AUTH PLAIN AG1lAHMzY3JldA==");
}

#[tokio::test]
async fn starttls_stripped_stops_before_credentials() {
    let server = FixtureServer::start(&["
        S: 220 smtp.gmail.com ESMTP
        C: EHLO {any}
        S: 250-smtp.gmail.com
        S: 250 AUTH PLAIN LOGIN
        C: QUIT
        S: 221 bye"])
    .await;
    let out = smtprobe(
        args(
            &server,
            &server.ca,
            &["--tls", "starttls", "--user", "you@gmail.com", "--json"],
        ),
        pw_env(),
    )
    .await;
    assert_eq!(out.status.code(), Some(4));
    let j = json(&out);
    assert_eq!(j["diagnosis"]["code"], "starttls.not-offered");
    assert!(!server.seen().lines.iter().any(|l| l.starts_with("AUTH")));
}

#[tokio::test]
async fn starttls_injection_aborts() {
    // The injected lines travel in the same write as the 220 (consecutive `S:` lines).
    let before_220 = GMAIL_BEFORE_TLS.replace("S: 220 2.0.0 Ready to start TLS", "");
    let server = FixtureServer::start(&[&format!(
        "{before_220}
         S: 220 2.0.0 Ready to start TLS
         S: 250-injected
         S: 250 AUTH PLAIN
         ~ 500ms"
    )])
    .await;
    let out = smtprobe(
        args(&server, &server.ca, &["--user", "you@gmail.com", "--json"]),
        pw_env(),
    )
    .await;
    let j = json(&out);
    assert_eq!(j["diagnosis"]["code"], "starttls.injection");
    assert_eq!(j["failed_stage"], "starttls");
    assert!(!server.seen().lines.iter().any(|l| l.starts_with("AUTH")));
}

#[tokio::test]
async fn implicit_tls_against_starttls_port_is_recognised() {
    let server = FixtureServer::start(&["
        S: 220 smtp.gmail.com ESMTP x - gsmtp
        ~ 2000ms"])
    .await;
    let out = smtprobe(
        args(&server, &server.ca, &["--tls", "implicit", "--json"]),
        vec![],
    )
    .await;
    let j = json(&out);
    assert_eq!(j["failed_stage"], "tls");
    assert_eq!(j["diagnosis"]["code"], "tls.implicit-on-starttls-port");
    assert!(j["diagnosis"]["evidence"]
        .as_str()
        .unwrap_or_default()
        .contains("220 smtp.gmail.com"));
}

#[tokio::test]
async fn starttls_against_implicit_port_is_confirmed_with_a_second_connection() {
    // First connection: the client waits for a greeting that never comes (the server
    // waits for a ClientHello). Second: a TLS handshake works.
    let server = FixtureServer::start(&["~ 3000ms", IMPLICIT_GREETING_THEN_QUIT]).await;
    let mut a = args(&server, &server.ca, &["--tls", "starttls", "--json"]);
    set_timeout(&mut a, "1");
    let out = smtprobe(a, vec![]).await;
    let j = json(&out);
    assert_eq!(j["diagnosis"]["code"], "tls.starttls-on-implicit-port");
    assert_eq!(server.seen().connections, 2);
    assert!(!server.seen().lines.iter().any(|l| l.starts_with("AUTH")));
}

#[tokio::test]
async fn auto_mode_switches_to_implicit_and_says_so() {
    let real = "
        * TLS
        S: 220 mx ESMTP
        C: EHLO {any}
        S: 250-mx
        S: 250 AUTH PLAIN
        C: AUTH PLAIN <redacted: user you@gmail.com>
        S: 235 ok
        C: QUIT
        S: 221 bye";
    let server = FixtureServer::start(&["~ 3000ms", IMPLICIT_GREETING_THEN_QUIT, real]).await;
    let mut a = args(&server, &server.ca, &["--user", "you@gmail.com", "--json"]);
    set_timeout(&mut a, "1");
    let out = smtprobe(a, pw_env()).await;
    let j = json(&out);
    assert_eq!(j["outcome"], "ok", "{j:#}");
    assert_eq!(j["settings"]["security"], "implicit");
    assert!(j["notes"][0]
        .as_str()
        .unwrap()
        .contains("expects TLS from the first byte"));
    received(&server, &format!("AUTH PLAIN {PLAIN_B64}"));
    // Issue 10: `stages[]` describes the connection that worked; the abandoned
    // attempt (its greeting that never came) stays in the notes and the transcript.
    let stages: Vec<(&str, bool)> = j["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["stage"].as_str().unwrap(), s["ok"] == true))
        .collect();
    assert_eq!(
        stages,
        [
            ("dns", true),
            ("connect", true),
            ("tls", true),
            ("greeting", true),
            ("ehlo", true),
            ("auth", true),
            ("quit", true)
        ],
        "{j:#}"
    );
    assert!(j["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["text"].as_str().unwrap().starts_with("no greeting after")));
}

#[tokio::test]
async fn full_send_is_dot_stuffed_with_headers() {
    // The probe pipelines MAIL, RCPT and DATA (RFC 2920): the three replies go out
    // in one write after DATA.
    let server = FixtureServer::start(&[&gmail_starttls(
        "C: AUTH PLAIN <redacted: user you@gmail.com>
         S: 235 2.7.0 Accepted
         C: MAIL FROM:<you@gmail.com> SIZE={any}
         C: RCPT TO:<friend@example.com>
         C: DATA
         S: 250 2.1.0 OK
         S: 250 2.1.5 OK
         S: 354  Go ahead
         C: <message>
         S: 250 2.0.0 OK  1746829334 - gsmtp
         C: QUIT
         S: 221 bye",
    )])
    .await;
    let out = smtprobe(
        args(
            &server,
            &server.ca,
            &[
                "--user",
                "you@gmail.com",
                "--from",
                "you@gmail.com",
                "--to",
                "friend@example.com",
                "--json",
            ],
        ),
        pw_env(),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let body = server.seen().body;
    for h in [
        "Date: ",
        "From: <you@gmail.com>",
        "To: <friend@example.com>",
        "Subject: ",
        "Message-ID: <",
    ] {
        assert!(body.contains(h), "missing {h} in {body}");
    }
    assert!(
        body.split("\r\n").all(|l| !l.contains('\n')),
        "CRLF line ends only"
    );
}

#[tokio::test]
async fn trickling_server_does_not_extend_the_deadline() {
    let server = FixtureServer::start(&["
        ~ trickle 200ms
        S: 220 smtp.example.org ESMTP a very slow greeting indeed"])
    .await;
    let mut a = args(&server, &server.ca, &["--tls", "none", "--json"]);
    set_timeout(&mut a, "1");
    let started = Instant::now();
    let out = smtprobe(a, vec![]).await;
    // The greeting would take ~11 s at this rate; the deadline is 1 s per wait. The bound
    // here is generous: it checks "bounded", not speed.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let j = json(&out);
    assert_eq!(j["diagnosis"]["code"], "server.timeout");
    assert_eq!(j["failed_stage"], "greeting");
}

#[tokio::test]
async fn usage_errors_exit_2_before_connecting() {
    let server = FixtureServer::start(&["S: 220 x"]).await;
    let ca = server.ca.clone();
    let dir = tempfile::tempdir().unwrap();
    let bad_pw_file = dir.path().join("missing");
    for extra in [
        vec![
            "--user",
            "you@gmail.com",
            "--password-file",
            bad_pw_file.to_str().unwrap(),
        ],
        vec!["--from", "a@b.org\r\nRCPT TO:<x@y>", "--to", "c@d.org"],
        vec!["--helo", "bad\nname"],
        vec!["--user", "me\r\nQUIT", "--password", "x"],
        vec!["--timeout", "0"],
        vec!["--tls", "sideways"],
        vec!["--user", "you@gmail.com"],
    ] {
        let out = smtprobe(args(&server, &ca, &extra), vec![]).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stderr.is_empty(), "{extra:?} says what is wrong");
    }
    assert_eq!(server.seen().connections, 0, "nothing was sent");
}

#[tokio::test]
async fn password_file_trailing_newline_is_not_part_of_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let pw_file = dir.path().join("pw");
    std::fs::write(&pw_file, format!("{PW}\n")).unwrap();
    let server = FixtureServer::start(&[&gmail_starttls(
        "C: AUTH PLAIN <redacted: user you@gmail.com>
         S: 235 2.7.0 Accepted
         C: QUIT
         S: 221 bye",
    )])
    .await;
    let out = smtprobe(
        args(
            &server,
            &server.ca,
            &[
                "--user",
                "you@gmail.com",
                "--password-file",
                pw_file.to_str().unwrap(),
            ],
        ),
        vec![],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    received(&server, &format!("AUTH PLAIN {PLAIN_B64}"));
}

#[tokio::test]
async fn password_flag_warns_about_the_process_list() {
    let out = smtprobe(
        vec![
            "check".into(),
            "127.0.0.1".into(),
            "--port".into(),
            "1".into(),
            "--user".into(),
            "me".into(),
            "--password".into(),
            "x".into(),
            "--tls".into(),
            "none".into(),
        ],
        vec![],
    )
    .await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("process list"));
}

#[tokio::test]
async fn connection_refused_is_a_network_failure() {
    // Bind then drop a listener to get a port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = smtprobe(
        vec![
            "check".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--json".into(),
        ],
        vec![],
    )
    .await;
    assert_eq!(out.status.code(), Some(3));
    let j = json(&out);
    assert_eq!(j["diagnosis"]["code"], "connect.refused");
    assert_eq!(j["connect_attempts"][0]["error"], "refused");
}

#[tokio::test]
async fn verbose_tracing_never_shows_the_password() {
    let server = FixtureServer::start(&[&gmail_starttls(
        "C: AUTH PLAIN <redacted: user you@gmail.com>
         S: 235 ok
         C: QUIT
         S: 221 bye",
    )])
    .await;
    let out = smtprobe(
        args(
            &server,
            &server.ca,
            &["--user", "you@gmail.com", "-vvv", "--annotate"],
        ),
        pw_env(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("AUTH PLAIN <redacted"),
        "wire events are traced: {stderr}"
    );
    no_secret(&out);
}

#[tokio::test]
async fn completions_and_help() {
    let out = smtprobe(vec!["completions".into(), "bash".into()], vec![]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("smtprobe"));
    let out = smtprobe(vec!["check".into(), "--help".into()], vec![]).await;
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Examples:") && help.contains("--password-file"));
}

/// The harness itself: a probe that leaves its fixture is reported, with the fixture
/// line, so every `followed` assertion above can fail.
#[tokio::test]
async fn a_probe_that_leaves_the_fixture_is_reported_with_the_line() {
    let server = FixtureServer::start(&["
        S: 220 lab ESMTP
        C: NOOP
        S: 250 ok"])
    .await;
    let out = smtprobe(
        args(&server, &server.ca, &["--tls", "none", "--json"]),
        vec![],
    )
    .await;
    assert_ne!(out.status.code(), Some(0));
    let seen = server.seen_when_ended(Duration::from_secs(5)).await;
    assert!(!seen.completed, "{:?}", seen.results);
    assert_eq!(
        seen.lines.first().map(String::as_str),
        Some("EHLO client.test")
    );
    let result = seen.results.join("\n");
    // The header is 6 lines and a blank line: `C: NOOP` is line 9.
    assert!(
        result.contains("fixture line 9: expected `NOOP`, got `EHLO client.test`"),
        "{result}"
    );
}

/// A lock-step sequence has no server behaviour: binding it without strict mode is
/// refused with a reason, not a panic on the first connection.
#[tokio::test]
async fn a_strict_sequence_needs_strict_mode() {
    use smtprobe::replay::{ReplayOptions, ReplayServer, Scenarios};
    let seq = Scenarios::strict_sequence(vec![fixture("S: 220 x")]).unwrap();
    let e = ReplayServer::bind_scenarios(
        seq,
        "127.0.0.1:0".parse().unwrap(),
        ReplayOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("only with strict mode"), "{e}");
    assert!(Scenarios::strict_sequence(Vec::new()).is_err());
}
