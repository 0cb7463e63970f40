//! Hostile and broken servers on 127.0.0.1: STARTTLS stripping and injection, replies
//! that are not SMTP, endless replies, silence and closes at every stage, AUTH abuse, and
//! injection through smtprobe's own input.
//!
//! Every case runs the real binary with `--timeout 1 --json` and asserts, besides its own
//! expectation (exit code, failing stage, diagnosis code), what holds for any server (see
//! `tests/common/hostile.rs`): a documented exit code (never a panic), a JSON report,
//! termination within a generous bound, no raw control byte on stdout/stderr or inside a
//! JSON string, no password in any output, and no credentials on the wire unless the
//! case allows them. The cases of one class run concurrently.

use crate::common::hostile::*;
use crate::common::*;
use std::time::Duration;

const GREETING: &str = "220 mx.test ESMTP ready";
const CAPS_CLEAR: &str = "250-mx.test
                          250-STARTTLS
                          250 AUTH PLAIN LOGIN";
const CAPS_TLS: &str = "250-mx.test
                        250-SIZE 1000000
                        250 AUTH PLAIN LOGIN XOAUTH2";
const MAIL_FLAGS: &[&str] = &[
    "--tls",
    "starttls",
    "--from",
    "you@example.com",
    "--to",
    "friend@example.org",
];

/// The server stops answering and records whatever the client still sends.
fn drain() -> String {
    "* silence".into()
}

/// `S:` lines for reply text written raw (escapes and control bytes as the hostile
/// server sends them): escaped for the fixture, a trailing space kept.
fn s(lines: &str) -> String {
    use smtprobe::fixture::{step_text, Step};
    use smtprobe::protocol::escape::escape_bytes;
    lines
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| step_text(&Step::Server(escape_bytes(l.as_bytes()))))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Raw bytes in one write (`S!:` lines).
fn raw_write(bytes: impl AsRef<[u8]>) -> String {
    raw(bytes.as_ref())
}

/// `~ repeat N` of a raw write: a flood.
fn repeat(bytes: impl AsRef<[u8]>, times: u32) -> String {
    format!("~ repeat {times}\n{}", raw(bytes.as_ref()))
}

/// A raw write one byte at a time, `gap` apart.
fn trickle(bytes: impl AsRef<[u8]>, gap: Duration) -> String {
    format!("~ trickle {}ms\n{}", gap.as_millis(), raw(bytes.as_ref()))
}

/// Greeting and EHLO up to the client's STARTTLS.
fn to_starttls() -> Vec<String> {
    vec![
        s(GREETING),
        "C: EHLO {any}".into(),
        s(CAPS_CLEAR),
        "C: STARTTLS".into(),
    ]
}

/// Through the handshake and the second EHLO, answered with `caps`.
fn tls_with(caps: &str) -> Vec<String> {
    let mut v = to_starttls();
    v.extend([
        s("220 2.0.0 Ready to start TLS"),
        "* TLS".into(),
        "C: EHLO {any}".into(),
        s(caps),
    ]);
    v
}

/// `a` then `b`.
fn then(mut a: Vec<String>, b: impl IntoIterator<Item = String>) -> Vec<String> {
    a.extend(b);
    a
}

/// The whole submission with a test message, each step labelled with the server reply it
/// stands for, so a case can cut the conversation at any stage.
fn full_flow() -> Vec<(&'static str, String)> {
    vec![
        ("greeting", s(GREETING)),
        ("", "C: EHLO {any}".into()),
        ("ehlo", s(CAPS_CLEAR)),
        ("", "C: STARTTLS".into()),
        ("starttls", s("220 2.0.0 Ready to start TLS")),
        ("tls", "* TLS".into()),
        ("", "C: EHLO {any}".into()),
        ("ehlo-tls", s(CAPS_TLS)),
        ("", "C: AUTH PLAIN <redacted: user you@example.com>".into()),
        ("auth", s("235 2.7.0 Accepted")),
        ("", "C: MAIL FROM:<you@example.com>{any}".into()),
        ("mail", s("250 2.1.0 OK")),
        ("", "C: RCPT TO:<friend@example.org>{any}".into()),
        ("rcpt", s("250 2.1.5 OK")),
        ("", "C: DATA".into()),
        ("data", s("354 Go ahead")),
        ("", "C: <message>".into()),
        ("data-end", s("250 2.0.0 queued")),
        ("", "C: QUIT".into()),
        ("quit", s("221 2.0.0 bye")),
    ]
}

/// The full flow up to (not including) the reply labelled `at`, then `rest`.
fn cut(at: &str, rest: Vec<String>) -> Vec<String> {
    let flow = full_flow();
    let i = flow
        .iter()
        .position(|(l, _)| *l == at)
        .unwrap_or_else(|| panic!("no step {at}"));
    let mut v: Vec<String> = flow.into_iter().take(i).map(|(_, s)| s).collect();
    v.extend(rest);
    v
}

/// Expected (exit code, failing stage) when the conversation breaks at `at`.
fn stage_of(at: &str) -> (i32, &'static str) {
    match at {
        "greeting" => (5, "greeting"),
        "ehlo" | "ehlo-tls" => (5, "ehlo"),
        "starttls" => (4, "starttls"),
        "tls" => (4, "tls"),
        "auth" => (6, "auth"),
        "mail" => (7, "mail"),
        "rcpt" => (7, "rcpt"),
        "data" | "data-end" => (7, "data"),
        other => panic!("no stage for {other}"),
    }
}

/// Before the AUTH reply nothing may carry credentials; from it on they were sent over TLS.
fn creds_for(case: Case, at: &str) -> Case {
    match at {
        "greeting" | "ehlo" | "starttls" | "tls" | "ehlo-tls" => case,
        _ => case.creds_may_be_sent(),
    }
}

// ---- STARTTLS stripping, refusal, injection, capabilities --------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_stripping_refusal_and_injection() {
    let odd = |name, reply: &'static str| {
        Case::new(
            name,
            then(to_starttls(), [s(reply), drain()]),
            4,
            Some("starttls"),
            "protocol.unexpected-reply",
        )
        .check(|o| {
            // The handshake never started: everything after STARTTLS went in clear and
            // the only further command is QUIT (or nothing).
            match o.seen.lines.iter().skip(2).find(|l| *l != "QUIT") {
                None => Ok(()),
                Some(l) => Err(format!("sent {l:?} after a non-220 to STARTTLS")),
            }
        })
    };
    let cases = vec![
        Case::new(
            "stripped: STARTTLS missing from EHLO, AUTH offered in clear",
            vec![
                s(GREETING),
                "C: EHLO {any}".into(),
                s("250-mx.test
                   250 AUTH PLAIN LOGIN"),
                drain(),
            ],
            4,
            Some("starttls"),
            "starttls.not-offered",
        )
        .check(never_received("STARTTLS")),
        Case::new(
            "stripped: STARTTLS keyword mangled (XXXXXXXA)",
            vec![
                s(GREETING),
                "C: EHLO {any}".into(),
                s("250-mx.test
                   250-XXXXXXXA
                   250 AUTH PLAIN"),
                drain(),
            ],
            4,
            Some("starttls"),
            "starttls.not-offered",
        ),
        Case::new(
            "refused: 454 to STARTTLS",
            then(to_starttls(), [s("454 4.7.0 TLS not available"), drain()]),
            4,
            Some("starttls"),
            "starttls.rejected",
        ),
        Case::new(
            "refused: 502 to STARTTLS",
            then(to_starttls(), [s("502 5.5.1 not implemented"), drain()]),
            4,
            Some("starttls"),
            "starttls.rejected",
        ),
        odd("odd reply to STARTTLS: 354", "354 go ahead"),
        odd("odd reply to STARTTLS: 250", "250 2.0.0 OK"),
        odd("odd reply to STARTTLS: 221", "221 2.0.0 bye"),
        Case::new(
            // Issue 13: HELO once after 500/502 (RFC 5321 §4.1.1.1), and a HELO-only
            // server never gets STARTTLS (or AUTH).
            "EHLO refused with 500, HELO accepted",
            vec![
                s(GREETING),
                "C: EHLO {any}".into(),
                s("500 5.5.1 command unrecognized"),
                "C: HELO {any}".into(),
                s("250 mx.test"),
                drain(),
            ],
            5,
            Some("ehlo"),
            "ehlo.not-esmtp",
        )
        .check(never_received("STARTTLS"))
        .check(never_received("AUTH"))
        .check(never_received("STARTTLS")),
        Case::new(
            // Issue 13: HELO once after 500/502 (RFC 5321 §4.1.1.1), and a HELO-only
            // server never gets STARTTLS (or AUTH).
            "EHLO refused with 502, HELO accepted",
            vec![
                s(GREETING),
                "C: EHLO {any}".into(),
                s("502 5.5.2 EHLO not implemented, try HELO"),
                "C: HELO {any}".into(),
                s("250 mx.test"),
                drain(),
            ],
            5,
            Some("ehlo"),
            "ehlo.not-esmtp",
        )
        .check(never_received("STARTTLS"))
        .check(never_received("AUTH")),
        Case::new(
            "220 Ready, then clear-text SMTP instead of a handshake",
            then(
                to_starttls(),
                [
                    s("220 2.0.0 Ready to start TLS"),
                    // The ClientHello: the client is in the handshake now.
                    "* read".into(),
                    s("235 2.7.0 Authentication successful"),
                    drain(),
                ],
            ),
            4,
            Some("tls"),
            "starttls.injection",
        )
        .check(|o| {
            // Not the implicit-TLS port mix-up: STARTTLS was agreed on this port.
            let summary = o.json["diagnosis"]["summary"].as_str().unwrap_or_default();
            match summary.contains("not implicit TLS") {
                false => Ok(()),
                true => Err(format!("summary blames the TLS mode: {summary}")),
            }
        }),
        Case::new(
            "--tls auto: clear text after the 220 is not retried as a mode mix-up",
            then(
                to_starttls(),
                [
                    s("220 2.0.0 Ready to start TLS"),
                    // The ClientHello: the client is in the handshake now.
                    "* read".into(),
                    s("250 2.0.0 OK"),
                    drain(),
                ],
            ),
            4,
            Some("tls"),
            "starttls.injection",
        )
        .flags(&["--tls", "auto"])
        .also(then(to_starttls(), [s("220 go"), drain()]))
        .check(
            |o| match (o.seen.connections, o.json["notes"].as_array().map(Vec::len)) {
                (1, Some(0)) => Ok(()),
                (n, notes) => Err(format!(
                    "{n} connections, notes {notes:?}: {}",
                    o.json["notes"]
                )),
            },
        ),
        Case::new(
            "220 Ready, then the connection closes instead of a handshake",
            then(
                to_starttls(),
                [s("220 2.0.0 Ready to start TLS"), "* close".into()],
            ),
            4,
            Some("tls"),
            "tls.handshake-failed",
        ),
        Case::new(
            "220 Ready, then clear-text prose instead of a handshake",
            then(
                to_starttls(),
                [
                    s("220 2.0.0 Ready to start TLS"),
                    // The ClientHello: the client is in the handshake now.
                    "* read".into(),
                    raw_write(b"hello, no TLS here\r\n"),
                    drain(),
                ],
            ),
            4,
            Some("tls"),
            "tls.handshake-failed",
        ),
        Case::new(
            "injection after 220 Ready in the same packet (fake capabilities)",
            then(
                to_starttls(),
                [
                    raw_write(b"220 Ready\r\n250-mx.test\r\n250 AUTH PLAIN\r\n"),
                    drain(),
                ],
            ),
            4,
            Some("starttls"),
            "starttls.injection",
        ),
        Case::new(
            "injection after 220 Ready as a partial line",
            then(to_starttls(), [raw_write(b"220 Ready\r\n25"), drain()]),
            4,
            Some("starttls"),
            "starttls.injection",
        ),
        Case::new(
            "injection after 220 Ready: fake 235 success",
            then(
                to_starttls(),
                [raw_write(b"220 Ready\r\n235 2.7.0 ok\r\n"), drain()],
            ),
            4,
            Some("starttls"),
            "starttls.injection",
        ),
        Case::new(
            "injection: the fake 250 arrives before STARTTLS is even answered",
            vec![
                s(GREETING),
                "C: EHLO {any}".into(),
                raw_write(b"250-mx.test\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n250 fake\r\n"),
                drain(),
            ],
            5,
            Some("ehlo"),
            "protocol.unexpected-reply",
        )
        .check(never_received("STARTTLS")),
        Case::new(
            "capabilities change after TLS: PLAIN before, only LOGIN after",
            then(
                tls_with("250-mx.test\n250 AUTH LOGIN"),
                [
                    "C: AUTH LOGIN".into(),
                    s("334 VXNlcm5hbWU6"),
                    "C: {any}".into(),
                    s("334 UGFzc3dvcmQ6"),
                    "C: {any}".into(),
                    s("235 2.7.0 Accepted"),
                    "C: QUIT".into(),
                    s("221 bye"),
                ],
            ),
            0,
            None,
            "ok",
        )
        .creds_may_be_sent()
        .check(never_received("AUTH PLAIN"))
        .check(|o| {
            let want = ["EHLO", "STARTTLS", "EHLO", "AUTH LOGIN"];
            let got: Vec<&str> = o
                .seen
                .lines
                .iter()
                .take(4)
                .map(|l| &l[..l.len().min(10)])
                .collect();
            match got.iter().zip(want).all(|(g, w)| g.starts_with(w)) {
                true => Ok(()),
                false => Err(format!("command order {got:?}")),
            }
        }),
        Case::new(
            "AUTH only before TLS, none after",
            then(tls_with("250-mx.test\n250 SIZE 1000"), [drain()]),
            6,
            Some("auth"),
            "auth.not-offered",
        ),
        Case::new(
            "STARTTLS offered again after TLS is not sent twice",
            then(
                tls_with("250-mx.test\n250-STARTTLS\n250 AUTH PLAIN"),
                [
                    "C: AUTH PLAIN <redacted: user you@example.com>".into(),
                    s("235 2.7.0 Accepted"),
                    "C: QUIT".into(),
                    s("221 bye"),
                ],
            ),
            0,
            None,
            "ok",
        )
        .creds_may_be_sent()
        .check(|o| match o.received("STARTTLS") {
            1 => Ok(()),
            n => Err(format!("STARTTLS sent {n} times")),
        }),
        Case::new(
            "terminal escapes in the certificate's names",
            then(to_starttls(), [s("220 go"), "* TLS".into(), drain()]),
            4,
            Some("tls"),
            "tls.untrusted-certificate",
        )
        .tls_config(certificate_saying("\x1b]0;owned\x07\x1b[2J.mx.test"))
        .check(|o| {
            let sans =
                o.json["tls"]["certificate"]["sans"].to_string() + &o.json["diagnosis"].to_string();
            match sans.contains("\\\\x1b]0;owned") {
                true => Ok(()),
                false => Err(format!("names not shown escaped: {sans}")),
            }
        }),
        Case::new(
            "implicit TLS port answers in clear text",
            vec![s(GREETING), drain()],
            4,
            Some("tls"),
            "tls.implicit-on-starttls-port",
        )
        .flags(&["--tls", "implicit"]),
    ];
    run_cases(cases).await;
}

// ---- reply parsing -----------------------------------------------------------------------

/// A greeting (raw bytes) followed by whatever the client does, recorded.
fn greeting_bytes(b: &[u8]) -> Vec<String> {
    vec![raw_write(b), drain()]
}

fn malformed_greeting(name: &'static str, b: &[u8]) -> Case {
    Case::new(
        name,
        greeting_bytes(b),
        5,
        Some("greeting"),
        "protocol.malformed-reply",
    )
    .check(never_received("EHLO"))
}

/// The report stays small however much the server sent: evidence and transcript are
/// capped (a memory bound observed through the output, not through timing).
fn small_report(o: &Outcome) -> Result<(), String> {
    let evidence = o.json["diagnosis"]["evidence"].as_str().unwrap_or_default();
    let transcript: usize = o.transcript().iter().map(String::len).sum();
    if evidence.len() > 1024 || transcript > 16 * 1024 || o.out.stdout.len() > 64 * 1024 {
        return Err(format!(
            "report too large: evidence {} bytes, transcript {transcript} bytes, stdout {} bytes",
            evidence.len(),
            o.out.stdout.len()
        ));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_that_are_not_smtp() {
    let long = "a".repeat(596);
    let long_greeting = format!("220 {long}");
    let long_ehlo = format!("250-mx.test {long}\n250-X-{long}\n250-STARTTLS\n250 8BITMIME");
    let cases = vec![
        Case::new(
            "code-only lines (220, 250) are valid replies",
            vec![
                raw_write(b"220\r\n"),
                "C: EHLO {any}".into(),
                raw_write(b"250\r\n"),
                drain(),
            ],
            4,
            Some("starttls"),
            "starttls.not-offered",
        ),
        malformed_greeting("letters in the code", b"2x0 mx.test\r\n"),
        malformed_greeting("code out of range: 6yz", b"620 mx.test\r\n"),
        malformed_greeting("code out of range: 1yz", b"120 mx.test\r\n"),
        malformed_greeting("code out of range: second digit 9", b"290 mx.test\r\n"),
        malformed_greeting("code followed by a letter", b"220x mx.test\r\n"),
        malformed_greeting("two-digit code", b"22 mx\r\n"),
        malformed_greeting("empty line", b"\r\n"),
        malformed_greeting("SSH banner", b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n"),
        malformed_greeting(
            "HTTP response",
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\nContent-Length: 0\r\n\r\n",
        ),
        malformed_greeting(
            "binary garbage",
            b"\x16\x03\x01\x00\x2a\x02\x00\x00\x26\x03\x03\xff\xfe\r\n",
        ),
        Case::new(
            "mixed codes in one reply",
            vec![
                s(GREETING),
                "C: EHLO {any}".into(),
                raw_write(b"250-mx.test\r\n550-STARTTLS\r\n250 AUTH PLAIN\r\n"),
                drain(),
            ],
            5,
            Some("ehlo"),
            "protocol.malformed-reply",
        )
        .check(never_received("STARTTLS")),
        Case::new(
            "one endless line (10 MB, no line end)",
            vec![repeat(vec![b'A'; 1024], 10 * 1024), drain()],
            5,
            Some("greeting"),
            "protocol.malformed-reply",
        )
        .check(small_report),
        Case::new(
            "endless 250- continuation lines",
            vec![
                s(GREETING),
                "C: EHLO {any}".into(),
                repeat(b"250-X-PADDING some capability\r\n", 200_000),
                drain(),
            ],
            5,
            Some("ehlo"),
            "protocol.malformed-reply",
        )
        .check(small_report)
        .check(never_received("STARTTLS")),
        Case::new(
            "greeting followed by 60 KB of unsolicited continuation lines",
            vec![
                // One write: the greeting and what follows arrive together.
                raw_write(
                    [
                        format!("{GREETING}\r\n").as_bytes(),
                        &b"250-\x1b[2J unsolicited padding line\r\n".repeat(1800),
                    ]
                    .concat(),
                ),
                drain(),
            ],
            5,
            Some("greeting"),
            "protocol.unexpected-reply",
        )
        .check(small_report)
        .check(never_received("EHLO")),
        Case::new(
            "60 KB injected after the 220 to STARTTLS",
            then(
                to_starttls(),
                [
                    // One write: the 220 and what follows arrive together.
                    raw_write(
                        [
                            &b"220 2.0.0 Ready\r\n"[..],
                            &b"250-\x1b[2J injected padding line\r\n".repeat(1800),
                        ]
                        .concat(),
                    ),
                    drain(),
                ],
            ),
            4,
            Some("starttls"),
            "starttls.injection",
        )
        .check(small_report),
        Case::new(
            "600-byte lines are accepted",
            vec![
                s(&long_greeting),
                "C: EHLO {any}".into(),
                s(&long_ehlo),
                "C: STARTTLS".into(),
                s("220 go ahead"),
                "* TLS".into(),
                "C: EHLO {any}".into(),
                s(&long_ehlo.replace("250-STARTTLS\n", "")),
                "C: QUIT".into(),
                s("221 bye"),
            ],
            0,
            None,
            "ok",
        )
        .no_user()
        .check(|o| {
            let n = o
                .transcript()
                .iter()
                .filter(|t| t.len() >= 600 && t.ends_with(&"a".repeat(500)))
                .count();
            // The greeting and two lines in each of the two EHLO replies.
            match n {
                5 => Ok(()),
                n => Err(format!("{n} long lines in the transcript, expected 5")),
            }
        }),
        Case::new(
            "bare LF line ends throughout",
            vec![
                raw_write(b"220 mx.test ESMTP\n"),
                "C: EHLO {any}".into(),
                raw_write(b"250-mx.test\n250-STARTTLS\n250 SIZE 100\n"),
                "C: STARTTLS".into(),
                raw_write(b"220 go\n"),
                "* TLS".into(),
                "C: EHLO {any}".into(),
                raw_write(b"250-mx.test\n250 AUTH PLAIN\n"),
                "C: AUTH PLAIN <redacted: user you@example.com>".into(),
                raw_write(b"235 ok\n"),
                "C: QUIT".into(),
                raw_write(b"221 bye\n"),
            ],
            0,
            None,
            "ok",
        )
        .creds_may_be_sent(),
        Case::new(
            "bare CR inside a line does not end it",
            vec![
                raw_write(b"220 mx.test\r250 fake line\r\n"),
                "C: EHLO {any}".into(),
                s("250 mx.test"),
                drain(),
            ],
            4,
            Some("starttls"),
            "starttls.not-offered",
        )
        .check(transcript_has("220 mx.test\\r250 fake line")),
        Case::new(
            "NUL and terminal escapes in a rejecting greeting",
            greeting_bytes(b"554 5.7.1 \x1b[2J\x1b]0;owned\x07 go away\x00 now\r\n"),
            5,
            Some("greeting"),
            "greeting.rejected",
        )
        .check(transcript_has(
            "\\x1b[2J\\x1b]0;owned\\x07 go away\\x00 now",
        ))
        .check(|o| {
            let ev = o.json["diagnosis"]["evidence"].as_str().unwrap_or_default();
            match ev.contains("\\x1b[2J") {
                true => Ok(()),
                false => Err(format!("evidence not shown escaped: {ev:?}")),
            }
        }),
        Case::new(
            "terminal escapes in EHLO keywords",
            vec![
                s(GREETING),
                "C: EHLO {any}".into(),
                raw_write(b"250-mx.test\r\n250-\x1b[31mSTARTTLS\r\n250 AUTH\x1b[0m PLAIN\r\n"),
                drain(),
            ],
            4,
            Some("starttls"),
            "starttls.not-offered",
        ),
        Case::new(
            "terminal escapes in the AUTH mechanism list",
            then(
                tls_with("250-mx.test\n250 AUTH \x1b]0;owned\x07CRAM-MD5"),
                [drain()],
            ),
            6,
            Some("auth"),
            "auth.mechanism-unsupported",
        )
        .check(|o| {
            let summary = o.json["diagnosis"]["summary"].as_str().unwrap_or_default();
            let lower = summary.to_ascii_lowercase();
            match lower.contains("\\x1b]0;owned\\x07cram-md5") {
                true => Ok(()),
                false => Err(format!("mechanisms not shown escaped: {summary:?}")),
            }
        }),
        Case::new(
            "non-UTF-8 bytes in the greeting",
            greeting_bytes(b"554 \xff\xfe caf\xe9 closed\r\n"),
            5,
            Some("greeting"),
            "greeting.rejected",
        )
        .check(transcript_has("554 \\xff\\xfe caf\\xe9 closed")),
        Case::new(
            "one byte at a time",
            vec![
                trickle(
                    format!("{GREETING}\r\n").into_bytes(),
                    Duration::from_millis(2),
                ),
                "C: EHLO {any}".into(),
                trickle(
                    b"250-mx.test\r\n250 AUTH PLAIN\r\n",
                    Duration::from_millis(2),
                ),
                drain(),
            ],
            4,
            Some("starttls"),
            "starttls.not-offered",
        ),
        Case::new(
            "trickle longer than --timeout does not extend the wait",
            vec![
                s(GREETING),
                "C: EHLO {any}".into(),
                // 20 s of trickle against a 1 s deadline.
                trickle(
                    format!("250-mx.test {}\r\n250 ok\r\n", "x".repeat(200)).into_bytes(),
                    Duration::from_millis(100),
                ),
            ],
            5,
            Some("ehlo"),
            "server.timeout",
        ),
    ];
    run_cases(cases).await;
}

// ---- silence, closes, 421 and DATA without 354 ----------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_at_every_stage() {
    let mut cases = Vec::new();
    for at in [
        "greeting", "ehlo", "starttls", "tls", "ehlo-tls", "auth", "mail", "rcpt", "data",
        "data-end",
    ] {
        let (exit, stage) = stage_of(at);
        let name: &'static str = Box::leak(format!("silence at {at}").into_boxed_str());
        cases.push(
            creds_for(
                Case::new(
                    name,
                    cut(at, vec![drain()]),
                    exit,
                    Some(stage),
                    "server.timeout",
                ),
                at,
            )
            .flags(MAIL_FLAGS),
        );
    }
    cases.push(
        Case::new(
            "silence at QUIT is not an error",
            cut("quit", vec![drain()]),
            0,
            None,
            "ok",
        )
        .flags(MAIL_FLAGS)
        .creds_may_be_sent(),
    );
    run_cases(cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_closing_421_at_every_stage() {
    let mut cases = Vec::new();
    for at in [
        "greeting", "ehlo", "starttls", "ehlo-tls", "auth", "mail", "rcpt", "data", "data-end",
    ] {
        let (exit, stage) = stage_of(at);
        let name: &'static str = Box::leak(format!("421 at {at}").into_boxed_str());
        cases.push(
            creds_for(
                Case::new(
                    name,
                    cut(
                        at,
                        vec![
                            s("421 4.3.2 Service shutting down, closing channel"),
                            drain(),
                        ],
                    ),
                    exit,
                    Some(stage),
                    "server.unavailable",
                ),
                at,
            )
            .flags(MAIL_FLAGS)
            // RFC 5321 §3.8: after 421 the server is gone; the client does not QUIT.
            .check(never_received("QUIT")),
        );
    }
    cases.push(
        Case::new(
            "421 to QUIT after a successful check",
            cut("quit", vec![s("421 4.3.2 bye"), drain()]),
            0,
            None,
            "ok",
        )
        .flags(MAIL_FLAGS)
        .creds_may_be_sent(),
    );
    run_cases(cases).await;
}

/// Through AUTH to a server offering PIPELINING, and the client's MAIL, RCPT and DATA
/// sent as one group (RFC 2920 §3.1), before any reply.
fn pipelined_group() -> Vec<String> {
    then(
        tls_with("250-mx.test\n250-PIPELINING\n250 AUTH PLAIN"),
        [
            "C: AUTH PLAIN <redacted: user you@example.com>".into(),
            s("235 2.7.0 Accepted"),
            "C: MAIL FROM:{any}".into(),
            "C: RCPT TO:{any}".into(),
            "C: DATA".into(),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_mid_reply_and_data_without_354() {
    let close = |name, at: &'static str, partial: &[u8]| {
        let (exit, stage) = stage_of(at);
        creds_for(
            Case::new(
                name,
                cut(at, vec![raw_write(partial), "* close".into()]),
                exit,
                Some(stage),
                "server.closed",
            ),
            at,
        )
        .flags(MAIL_FLAGS)
    };
    // No body line may reach the server: after DATA the only command is QUIT.
    let no_body = |o: &Outcome| {
        let after: Vec<&String> = o
            .seen
            .lines
            .iter()
            .skip_while(|l| *l != "DATA")
            .skip(1)
            .collect();
        match after.iter().all(|l| *l == "QUIT") {
            true => Ok(()),
            false => Err(format!("sent after DATA: {after:?}")),
        }
    };
    let cases = vec![
        close(
            "close mid-greeting",
            "greeting",
            b"220-mx.test ESMTP\r\n220-more",
        ),
        close("close mid-EHLO reply", "ehlo", b"250-mx.test\r\n250-PIPE"),
        close("close mid-STARTTLS reply", "starttls", b"22"),
        close("close mid-AUTH reply", "auth", b"23"),
        close("close mid-RCPT reply", "rcpt", b"250 2.1.5"),
        close(
            "close mid-reply after the body",
            "data-end",
            b"250-2.0.0 queued\r\n",
        ),
        close("close without a word at MAIL", "mail", b""),
        Case::new(
            "DATA answered 250 instead of 354: no body",
            cut("data", vec![s("250 2.0.0 OK"), drain()]),
            7,
            Some("data"),
            "protocol.unexpected-reply",
        )
        .flags(MAIL_FLAGS)
        .creds_may_be_sent()
        .check(no_body),
        Case::new(
            "DATA answered 354 and at once 250: no body",
            cut(
                "data",
                vec![raw_write(b"354 go\r\n250 2.0.0 queued\r\n"), drain()],
            ),
            7,
            Some("data"),
            "protocol.unexpected-reply",
        )
        .flags(MAIL_FLAGS)
        .creds_may_be_sent()
        .check(no_body),
        Case::new(
            "pipelined group: 354 followed at once by a fake 250: no body",
            then(
                pipelined_group(),
                [
                    raw_write(b"250 ok\r\n250 ok\r\n354 go\r\n250 2.0.0 queued\r\n"),
                    drain(),
                ],
            ),
            7,
            Some("data"),
            "protocol.unexpected-reply",
        )
        .flags(MAIL_FLAGS)
        .creds_may_be_sent()
        .check(no_body),
        Case::new(
            "pipelined group: sender refused but DATA accepted: empty message only",
            then(
                pipelined_group(),
                [
                    s("550 5.7.1 sender refused
                       250 ok
                       354 go"),
                    "C: .".into(),
                    s("554 5.5.1 no valid recipients"),
                    drain(),
                ],
            ),
            7,
            Some("mail"),
            "send.sender-rejected",
        )
        .flags(MAIL_FLAGS)
        .creds_may_be_sent()
        .check(|o| {
            let after: Vec<&String> = o.seen.lines.iter().skip_while(|l| *l != "DATA").collect();
            match after.as_slice() {
                [_, dot, quit] if *dot == "." && *quit == "QUIT" => Ok(()),
                _ => Err(format!("after DATA: {after:?}")),
            }
        }),
        Case::new(
            "DATA answered 554: no body",
            cut("data", vec![s("554 5.6.0 no thanks"), drain()]),
            7,
            Some("data"),
            "send.rejected",
        )
        .flags(MAIL_FLAGS)
        .creds_may_be_sent()
        .check(no_body),
    ];
    run_cases(cases).await;
}

// ---- AUTH abuse --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_abuse() {
    let after_tls = || tls_with(CAPS_TLS);
    let login = |steps: Vec<String>| then(then(after_tls(), ["C: AUTH LOGIN".into()]), steps);
    let received_in_order = |want: Vec<String>| {
        move |o: &Outcome| {
            let got: Vec<&String> = o
                .seen
                .lines
                .iter()
                .skip_while(|l| !l.starts_with("AUTH"))
                .collect();
            match got.len() >= want.len() && got.iter().zip(&want).all(|(g, w)| *g == w) {
                true => Ok(()),
                false => Err(format!("AUTH exchange {got:?}, expected to start {want:?}")),
            }
        }
    };
    let forms = secret_forms();
    let evil_challenge: &'static str = Box::leak(
        format!(
            "334 {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                br#"{"status":"401\u001b[2J","scope":"\u001b]0;owned\u0007","schemes":"\u0000"}"#
            )
        )
        .into_boxed_str(),
    );
    let pw_b64 = needle(&forms, "password: LOGIN payload").to_owned();
    let cases = vec![
        Case::new(
            "an extra 334 after PLAIN's initial response is cancelled",
            then(
                after_tls(),
                [
                    "C: AUTH PLAIN <redacted: user you@example.com>".into(),
                    s("334 "),
                    "C: *".into(),
                    s("501 5.7.0 cancelled"),
                    "C: QUIT".into(),
                    s("221 bye"),
                    drain(),
                ],
            ),
            6,
            Some("auth"),
            "auth.protocol-violation",
        )
        .creds_may_be_sent()
        .check(|o| match o.received("AUTH") {
            1 => Ok(()),
            n => Err(format!("{n} AUTH commands")),
        }),
        Case::new(
            "LOGIN challenge that is not base64: nothing sent",
            login(vec![
                s("334 !!not*base64!!"),
                "C: *".into(),
                s("501 5.7.0 cancelled"),
                "C: QUIT".into(),
                s("221 bye"),
                drain(),
            ]),
            6,
            Some("auth"),
            "auth.protocol-violation",
        )
        .flags(&["--tls", "starttls", "--auth", "login"])
        .creds_may_be_sent()
        .check(no_secret_received)
        .check(|o| match o.seen.lines.iter().any(|l| l == &user_b64()) {
            false => Ok(()),
            true => Err("user name sent after an invalid challenge".into()),
        }),
        Case::new(
            "LOGIN prompts reversed: answered by step, user name first",
            login(vec![
                s("334 UGFzc3dvcmQ6"),
                "C: {any}".into(),
                s("334 VXNlcm5hbWU6"),
                "C: {any}".into(),
                s("235 2.7.0 Accepted"),
                "C: QUIT".into(),
                s("221 bye"),
            ]),
            0,
            None,
            "ok",
        )
        .flags(&["--tls", "starttls", "--auth", "login"])
        .creds_may_be_sent()
        .check(received_in_order(vec![
            "AUTH LOGIN".into(),
            user_b64(),
            pw_b64.clone(),
            "QUIT".into(),
        ])),
        Case::new(
            "a third LOGIN prompt is cancelled; the password goes once",
            login(vec![
                s("334 VXNlcm5hbWU6"),
                "C: {any}".into(),
                s("334 UGFzc3dvcmQ6"),
                "C: {any}".into(),
                s("334 UGFzc3dvcmQ6"),
                "C: *".into(),
                s("501 5.7.0 cancelled"),
                "C: QUIT".into(),
                s("221 bye"),
                drain(),
            ]),
            6,
            Some("auth"),
            "auth.protocol-violation",
        )
        .flags(&["--tls", "starttls", "--auth", "login"])
        .creds_may_be_sent()
        .check(received_in_order(vec![
            "AUTH LOGIN".into(),
            user_b64(),
            pw_b64.clone(),
            "*".into(),
            "QUIT".into(),
        ])),
        Case::new(
            "235 before any credential (LOGIN)",
            login(vec![s("235 2.7.0 Accepted"), drain()]),
            6,
            Some("auth"),
            "auth.protocol-violation",
        )
        .flags(&["--tls", "starttls", "--auth", "login"])
        .creds_may_be_sent()
        .check(no_secret_received)
        .check(received_in_order(vec!["AUTH LOGIN".into(), "QUIT".into()])),
        Case::new(
            "235 after the user name, before the password (LOGIN)",
            login(vec![
                s("334 VXNlcm5hbWU6"),
                "C: {any}".into(),
                s("235 2.7.0 Accepted"),
                drain(),
            ]),
            6,
            Some("auth"),
            "auth.protocol-violation",
        )
        .flags(&["--tls", "starttls", "--auth", "login"])
        .creds_may_be_sent()
        .check(no_secret_received),
        Case::new(
            "503 to AUTH",
            then(
                after_tls(),
                [
                    "C: AUTH PLAIN <redacted: user you@example.com>".into(),
                    s("503 5.5.1 Error: authentication not enabled"),
                    drain(),
                ],
            ),
            6,
            Some("auth"),
            "auth.protocol-violation",
        )
        .creds_may_be_sent(),
        Case::new(
            "250 instead of 235 to AUTH PLAIN is not a login",
            then(
                after_tls(),
                [
                    "C: AUTH PLAIN <redacted: user you@example.com>".into(),
                    s("250 2.0.0 OK"),
                    drain(),
                ],
            ),
            6,
            Some("auth"),
            "auth.protocol-violation",
        )
        .creds_may_be_sent(),
        Case::new(
            "XOAUTH2: 235 after the error challenge is not a login",
            then(
                after_tls(),
                [
                    "C: AUTH XOAUTH2 <redacted: token for user you@example.com>".into(),
                    s("334 eyJzdGF0dXMiOiI0MDEifQ=="),
                    "C:".into(),
                    s("235 2.7.0 Accepted"),
                    drain(),
                ],
            ),
            6,
            Some("auth"),
            "auth.protocol-violation",
        )
        .flags(&["--tls", "starttls", "--oauth2-token-env", "HOSTILE_TOKEN"])
        .creds_may_be_sent(),
        Case::new(
            "XOAUTH2: a second 334 after the empty response is cancelled",
            then(
                after_tls(),
                [
                    "C: AUTH XOAUTH2 <redacted: token for user you@example.com>".into(),
                    s("334 eyJzdGF0dXMiOiI0MDEifQ=="),
                    "C:".into(),
                    s("334 eyJzdGF0dXMiOiI0MDEifQ=="),
                    "C: *".into(),
                    s("501 5.7.0 cancelled"),
                    drain(),
                ],
            ),
            6,
            Some("auth"),
            "auth.oauth-token-rejected",
        )
        .flags(&["--tls", "starttls", "--oauth2-token-env", "HOSTILE_TOKEN"])
        .creds_may_be_sent()
        .check(|o| match o.received("AUTH") {
            1 => Ok(()),
            n => Err(format!("{n} AUTH commands")),
        }),
        Case::new(
            "XOAUTH2 error challenge whose JSON carries terminal escapes",
            then(
                after_tls(),
                [
                    "C: AUTH XOAUTH2 <redacted: token for user you@example.com>".into(),
                    s(evil_challenge),
                    "C:".into(),
                    s("535 5.7.8 no"),
                    "C: QUIT".into(),
                    s("221 bye"),
                ],
            ),
            6,
            Some("auth"),
            "auth.oauth-token-rejected",
        )
        .flags(&["--tls", "starttls", "--oauth2-token-env", "HOSTILE_TOKEN"])
        .creds_may_be_sent()
        // The decoded challenge is in the verdict, inert (the generic checks: no raw
        // control character in any output or JSON string).
        .check(|o| {
            let summary = o.json["diagnosis"]["summary"].as_str().unwrap_or_default();
            match summary.contains("owned") {
                true => Ok(()),
                false => Err(format!("challenge not in the verdict: {summary}")),
            }
        }),
        Case::new(
            "XOAUTH2 error challenge that is not base64",
            then(
                after_tls(),
                [
                    "C: AUTH XOAUTH2 <redacted: token for user you@example.com>".into(),
                    s("334 %%%{not base64}"),
                    "C:".into(),
                    s("535 5.7.8 Username and Password not accepted"),
                    "C: QUIT".into(),
                    s("221 bye"),
                ],
            ),
            6,
            Some("auth"),
            "auth.oauth-token-rejected",
        )
        .flags(&["--tls", "starttls", "--oauth2-token-env", "HOSTILE_TOKEN"])
        .creds_may_be_sent(),
    ];
    run_cases(cases).await;
}

// ---- injection through smtprobe's own input ---------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crlf_in_own_input_exits_2_and_sends_nothing() {
    let server = FixtureServer::start(&[&[s(GREETING), drain()].join("\n")]).await;
    let ca = server.ca.clone();
    let bad: Vec<(&str, Vec<&str>)> = vec![
        (
            "--from",
            vec!["--from", "a@b.org\r\nRSET", "--to", "c@d.org"],
        ),
        ("--from", vec!["--from", "a@b.org\nRSET", "--to", "c@d.org"]),
        ("--to", vec!["--from", "a@b.org", "--to", "c@d.org\r\nDATA"]),
        (
            "--to",
            vec!["--from", "a@b.org", "--to", "ok@d.org", "--to", "x@y.org\r"],
        ),
        ("--user", vec!["--user", "me\r\nAUTH PLAIN AGFiAGM="]),
        ("--user", vec!["--user", "me\n"]),
        ("--user", vec!["--user", "me\x1b[2J"]),
        ("--helo", vec!["--helo", "client.test\r\nMAIL FROM:<x@y>"]),
        ("--helo", vec!["--helo", "client\rtest"]),
    ];
    let mut set = tokio::task::JoinSet::new();
    for (flag, extra) in bad {
        let a = args(&server, &ca, &extra);
        set.spawn(async move {
            let out = smtprobe(a, vec![("SMTPROBE_PASSWORD", PASSWORD.to_owned())]).await;
            (flag, extra.join(" "), out)
        });
    }
    while let Some(r) = set.join_next().await {
        let (flag, what, out) = r.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what:?}: {stderr}");
        assert!(stderr.contains(flag), "{what:?}: names {flag}: {stderr}");
        assert!(!out.stderr.contains(&b'\r'), "{what:?}: raw CR echoed");
    }
    assert_eq!(server.seen().connections, 0, "nothing was sent");
}

// ---- human output and the library on hostile text ----------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escapes_reach_the_terminal_escaped() {
    let evil: &[u8] = b"554-5.7.1 \x1b[2J\x1b]0;owned\x07\r\n554 5.7.1 bye\x00\x9b31m \xff\r\n";
    let mut set = tokio::task::JoinSet::new();
    for flags in [vec![], vec!["--annotate"], vec!["-vvv"]] {
        let server = FixtureServer::start(&[&[raw_write(evil), drain()].join("\n")]).await;
        let mut a = args(&server, &server.ca, &flags);
        set_timeout(&mut a, "1");
        // The server (and its CA file) lives as long as the run.
        set.spawn(async move {
            let out = smtprobe(a, vec![]).await;
            drop(server);
            (flags, out)
        });
    }
    while let Some(r) = set.join_next().await {
        let (flags, out) = r.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(5), "{flags:?}: {stdout}");
        for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            for bad in [0x1b, 0x07, 0x00] {
                assert!(
                    !bytes.contains(&bad),
                    "{flags:?}: raw {bad:#04x} on {name}:\n{}",
                    String::from_utf8_lossy(bytes)
                );
            }
            // U+009B (CSI as a C1 control) would be 0xc2 0x9b in UTF-8.
            assert!(
                !bytes.windows(2).any(|w| w == [0xc2, 0x9b]),
                "{flags:?}: raw C1 CSI on {name}"
            );
        }
        assert!(
            stdout.contains("\\x1b[2J\\x1b]0;owned\\x07"),
            "{flags:?}: shown escaped:\n{stdout}"
        );
        assert!(stdout.contains("bye\\x00"), "{flags:?}:\n{stdout}");
    }
}

/// The library, not just the binary: an endless reply ends as a short malformed-reply
/// diagnosis (memory bounded by the parser's caps, observed through the report size).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_replies_end_in_a_short_report_from_the_library() {
    for (what, script) in [
        ("endless line", vec![repeat(vec![b'7'; 4096], 4096)]),
        (
            "endless 250- lines",
            vec![
                s(GREETING),
                "C: EHLO {any}".into(),
                repeat(b"250-AUTH PLAIN LOGIN\r\n", 1_000_000),
            ],
        ),
    ] {
        let server = FixtureServer::start(&[&script.join("\n")]).await;
        let mut config = smtprobe::Config::new("localhost");
        config.port = Some(server.addr.port());
        config.connect_to = Some("127.0.0.1".parse().unwrap());
        config.tls = smtprobe::TlsChoice::Starttls;
        config.helo = Some("client.test".into());
        config.timeout = Duration::from_secs(1);
        config.extra_roots = vec![server.ca_der.clone()];
        let report = smtprobe::check(config).await.unwrap();
        assert_eq!(report.diagnosis.code, "protocol.malformed-reply", "{what}");
        let evidence = report.diagnosis.evidence.clone().unwrap_or_default();
        assert!(
            evidence.len() < 512,
            "{what}: evidence is {} bytes",
            evidence.len()
        );
        let transcript: usize = report
            .transcript
            .entries()
            .iter()
            .map(|e| e.text.len())
            .sum();
        assert!(
            transcript < 16 * 1024,
            "{what}: transcript {transcript} bytes"
        );
        assert!(
            report.to_json().to_string().len() < 64 * 1024,
            "{what}: report size"
        );
    }
}
