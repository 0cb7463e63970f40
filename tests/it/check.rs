//! `smtprobe check` end to end: the real binary against scripted servers on 127.0.0.1,
//! with STARTTLS and implicit TLS using certificates generated in the test.

use crate::common::*;
use smtprobe::certs::ServerCert;
use std::time::{Duration, Instant};

const PW: &str = "abcd efgh ijkl mnop";
/// base64("\0you@gmail.com\0abcd efgh ijkl mnop")
const PLAIN_B64: &str = "AHlvdUBnbWFpbC5jb20AYWJjZCBlZmdoIGlqa2wgbW5vcA==";

fn pw_env() -> Vec<(&'static str, String)> {
    vec![("SMTPROBE_PASSWORD", PW.to_string())]
}

fn assert_no_secret(out: &std::process::Output) {
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        for needle in [PW, PLAIN_B64, "YWJjZCBlZmdoIGlqa2wgbW5vcA=="] {
            assert!(!text.contains(needle), "secret {needle:?} leaked:\n{text}");
        }
    }
}

#[tokio::test]
async fn starttls_plain_success_json_shape_and_exit_code() {
    let pki = pki();
    let (_d, ca) = ca_file(&pki);
    let mut script = gmail_starttls_prefix();
    script.extend([
        Step::Expect(&*Box::leak(
            format!("AUTH PLAIN {PLAIN_B64}").into_boxed_str(),
        )),
        s("235 2.7.0 Accepted"),
        Step::Expect("QUIT"),
        s("221 2.0.0 closing connection"),
    ]);
    let server = Server::start(&pki, ServerCert::Valid, vec![script]).await;
    let out = smtprobe(
        args(&server, &ca, &["--user", "you@gmail.com", "--json"]),
        pw_env(),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(server.seen().completed);
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
    assert_no_secret(&out);
}

#[tokio::test]
async fn implicit_tls_login_success_human_output() {
    let pki = pki();
    let (_d, ca) = ca_file(&pki);
    let script = vec![
        Step::StartTls,
        s("220 smtp.gmail.com ESMTP x - gsmtp"),
        Step::Expect("EHLO"),
        s("250-smtp.gmail.com at your service
           250 AUTH LOGIN PLAIN"),
        Step::Expect("AUTH LOGIN"),
        s("334 VXNlcm5hbWU6"),
        Step::Expect("eW91QGdtYWlsLmNvbQ=="),
        s("334 UGFzc3dvcmQ6"),
        Step::Expect("YWJjZCBlZmdoIGlqa2wgbW5vcA=="),
        s("235 2.7.0 Accepted"),
        Step::Expect("QUIT"),
        s("221 bye"),
    ];
    let server = Server::start(&pki, ServerCert::Valid, vec![script]).await;
    let out = smtprobe(
        args(
            &server,
            &ca,
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
    assert_no_secret(&out);
}

#[tokio::test]
async fn bad_credentials_exit_code_and_diagnosis() {
    let pki = pki();
    let (_d, ca) = ca_file(&pki);
    let mut script = gmail_starttls_prefix();
    script.extend([
        Step::Expect("AUTH PLAIN"),
        s(
            "535-5.7.8 Username and Password not accepted. For more information, go to
           535 5.7.8  https://support.google.com/mail/?p=BadCredentials af79cd13be357 - gsmtp",
        ),
        Step::Expect("QUIT"),
        s("221 2.0.0 closing connection"),
    ]);
    let server = Server::start(&pki, ServerCert::Valid, vec![script]).await;
    let out = smtprobe(
        args(&server, &ca, &["--user", "you@gmail.com", "--json"]),
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
    assert!(server.seen().completed, "QUIT was sent after the failure");
    assert_no_secret(&out);
}

#[tokio::test]
async fn one_auth_attempt_no_fallback_to_login() {
    let pki = pki();
    let (_d, ca) = ca_file(&pki);
    let mut script = gmail_starttls_prefix();
    script.extend([
        Step::Expect("AUTH PLAIN"),
        s("535 5.7.8 Error: authentication failed"),
        Step::Any,
        s("221 bye"),
    ]);
    let server = Server::start(&pki, ServerCert::Valid, vec![script]).await;
    let out = smtprobe(args(&server, &ca, &["--user", "you@gmail.com"]), pw_env()).await;
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
    let pki = pki();
    let (_d, ca) = ca_file(&pki);
    for (cert, code) in [
        (ServerCert::SelfSigned, "tls.untrusted-certificate"),
        (ServerCert::Expired, "tls.expired-certificate"),
        (ServerCert::WrongName, "tls.hostname-mismatch"),
    ] {
        let script = gmail_starttls_prefix()[..5].to_vec();
        let mut script = script;
        script.push(Step::StartTls);
        let server = Server::start(&pki, cert, vec![script]).await;
        let out = smtprobe(
            args(&server, &ca, &["--user", "you@gmail.com", "--json"]),
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
    let pki = pki();
    let script = vec![Step::StartTls];
    let server = Server::start(&pki, ServerCert::Valid, vec![script]).await;
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
    let pki = pki();
    let (_d, ca) = ca_file(&pki);
    let script = vec![
        s("220 lab ESMTP"),
        Step::Expect("EHLO"),
        s("250-lab
           250 AUTH PLAIN LOGIN"),
        Step::Expect("QUIT"),
        s("221 bye"),
    ];
    let server = Server::start(&pki, ServerCert::Valid, vec![script]).await;
    let out = smtprobe(
        args(&server, &ca, &["--tls", "none", "--user", "me", "--json"]),
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
    let pki = pki();
    let (_d, ca) = ca_file(&pki);
    let script = vec![
        s("220 lab ESMTP"),
        Step::Expect("EHLO"),
        s("250-lab
           250 AUTH PLAIN LOGIN"),
        Step::Expect("AUTH PLAIN AG1lAHMzY3JldA=="),
        s("235 ok"),
        Step::Expect("QUIT"),
        s("221 bye"),
    ];
    let server = Server::start(&pki, ServerCert::Valid, vec![script]).await;
    let out = smtprobe(
        args(
            &server,
            &ca,
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
}

#[tokio::test]
async fn starttls_stripped_stops_before_credentials() {
    let pki = pki();
    let (_d, ca) = ca_file(&pki);
    let script = vec![
        s("220 smtp.gmail.com ESMTP"),
        Step::Expect("EHLO"),
        s("250-smtp.gmail.com
           250 AUTH PLAIN LOGIN"),
        Step::Expect("QUIT"),
        s("221 bye"),
    ];
    let server = Server::start(&pki, ServerCert::Valid, vec![script]).await;
    let out = smtprobe(
        args(
            &server,
            &ca,
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
    let pki = pki();
    let (_d, ca) = ca_file(&pki);
    let mut script = gmail_starttls_prefix()[..4].to_vec();
    script.push(Step::Send(
        b"220 2.0.0 Ready to start TLS\r\n250-injected\r\n250 AUTH PLAIN\r\n".to_vec(),
    ));
    script.push(Step::Sleep(Duration::from_millis(500)));
    let server = Server::start(&pki, ServerCert::Valid, vec![script]).await;
    let out = smtprobe(
        args(&server, &ca, &["--user", "you@gmail.com", "--json"]),
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
    let pki = pki();
    let (_d, ca) = ca_file(&pki);
    let script = vec![
        s("220 smtp.gmail.com ESMTP x - gsmtp"),
        Step::Sleep(Duration::from_secs(2)),
    ];
    let server = Server::start(&pki, ServerCert::Valid, vec![script]).await;
    let out = smtprobe(args(&server, &ca, &["--tls", "implicit", "--json"]), vec![]).await;
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
    let pki = pki();
    let (_d, ca) = ca_file(&pki);
    // First connection: the client waits for a greeting that never comes (the server
    // waits for a ClientHello). Second: a TLS handshake works.
    let first = vec![Step::Sleep(Duration::from_secs(3))];
    let second = implicit_greeting_then_quit();
    let server = Server::start(&pki, ServerCert::Valid, vec![first, second]).await;
    let mut a = args(&server, &ca, &["--tls", "starttls", "--json"]);
    set_timeout(&mut a, "1");
    let out = smtprobe(a, vec![]).await;
    let j = json(&out);
    assert_eq!(j["diagnosis"]["code"], "tls.starttls-on-implicit-port");
    assert_eq!(server.seen().connections, 2);
    assert!(!server.seen().lines.iter().any(|l| l.starts_with("AUTH")));
}

#[tokio::test]
async fn auto_mode_switches_to_implicit_and_says_so() {
    let pki = pki();
    let (_d, ca) = ca_file(&pki);
    let first = vec![Step::Sleep(Duration::from_secs(3))];
    let probe = implicit_greeting_then_quit();
    let real = vec![
        Step::StartTls,
        s("220 mx ESMTP"),
        Step::Expect("EHLO"),
        s("250-mx
           250 AUTH PLAIN"),
        Step::Expect(&*Box::leak(
            format!("AUTH PLAIN {PLAIN_B64}").into_boxed_str(),
        )),
        s("235 ok"),
        Step::Expect("QUIT"),
        s("221 bye"),
    ];
    let server = Server::start(&pki, ServerCert::Valid, vec![first, probe, real]).await;
    let mut a = args(&server, &ca, &["--user", "you@gmail.com", "--json"]);
    set_timeout(&mut a, "1");
    let out = smtprobe(a, pw_env()).await;
    let j = json(&out);
    assert_eq!(j["outcome"], "ok", "{j:#}");
    assert_eq!(j["settings"]["security"], "implicit");
    assert!(j["notes"][0]
        .as_str()
        .unwrap()
        .contains("expects TLS from the first byte"));
}

#[tokio::test]
async fn full_send_is_dot_stuffed_with_headers() {
    let pki = pki();
    let (_d, ca) = ca_file(&pki);
    let mut script = gmail_starttls_prefix();
    script.extend([
        Step::Expect("AUTH PLAIN"),
        s("235 2.7.0 Accepted"),
        Step::Expect("MAIL FROM:<you@gmail.com> SIZE="),
        Step::Expect("RCPT TO:<friend@example.com>"),
        Step::Expect("DATA"),
        s("250 2.1.0 OK
           250 2.1.5 OK
           354  Go ahead"),
        Step::Body,
        s("250 2.0.0 OK  1746829334 - gsmtp"),
        Step::Expect("QUIT"),
        s("221 bye"),
    ]);
    let server = Server::start(&pki, ServerCert::Valid, vec![script]).await;
    let out = smtprobe(
        args(
            &server,
            &ca,
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
    let pki = pki();
    let (_d, ca) = ca_file(&pki);
    let script = vec![Step::Trickle(
        b"220 smtp.example.org ESMTP a very slow greeting indeed\r\n".to_vec(),
        Duration::from_millis(200),
    )];
    let server = Server::start(&pki, ServerCert::Valid, vec![script]).await;
    let mut a = args(&server, &ca, &["--tls", "none", "--json"]);
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
    let pki = pki();
    let (dir, ca) = ca_file(&pki);
    let server = Server::start(&pki, ServerCert::Valid, vec![vec![s("220 x")]]).await;
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
    let pki = pki();
    let (dir, ca) = ca_file(&pki);
    let pw_file = dir.path().join("pw");
    std::fs::write(&pw_file, format!("{PW}\n")).unwrap();
    let mut script = gmail_starttls_prefix();
    script.extend([
        Step::Expect(&*Box::leak(
            format!("AUTH PLAIN {PLAIN_B64}").into_boxed_str(),
        )),
        s("235 2.7.0 Accepted"),
        Step::Expect("QUIT"),
        s("221 bye"),
    ]);
    let server = Server::start(&pki, ServerCert::Valid, vec![script]).await;
    let out = smtprobe(
        args(
            &server,
            &ca,
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
    let pki = pki();
    let (_d, ca) = ca_file(&pki);
    let mut script = gmail_starttls_prefix();
    script.extend([
        Step::Expect("AUTH PLAIN"),
        s("235 ok"),
        Step::Expect("QUIT"),
        s("221 bye"),
    ]);
    let server = Server::start(&pki, ServerCert::Valid, vec![script]).await;
    let out = smtprobe(
        args(
            &server,
            &ca,
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
    assert_no_secret(&out);
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
