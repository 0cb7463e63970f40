//! Trace tests: a client's side written as `C:` lines (and `* TLS` where the handshake
//! happens), the server's answers as `S:` prefixes of each reply's first line, every
//! input fed at many chunk sizes (as in `session.rs` and `protocol/reply.rs`).

use super::*;
use crate::fixture::Fixture;
use crate::protocol::ReplyParser;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

const CHUNKS: &[usize] = &[1, 2, 3, 5, 7, 16, 64, 100_000];
const SENTINEL: &str = "hunter2-sentinel";

fn bundled(name: &str) -> Arc<Behaviour> {
    let path = format!("{}/fixtures/{name}.fixture", env!("CARGO_MANIFEST_DIR"));
    let f = Fixture::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
    Arc::new(Behaviour::from_fixture(&f).unwrap())
}

fn plain_ir(user: &str) -> String {
    B64.encode(format!("\0{user}\0{SENTINEL}"))
}

/// What one run produced.
struct Run {
    /// The first line of every reply, in order, with `* TLS` where TLS started and
    /// `* close` / `* silence` where the server stopped.
    replies: Vec<String>,
    verdict: Verdict,
    log: Vec<String>,
}

/// Plays `trace` (C: lines, `* TLS`, and `S:` expectations, ignored here) against the
/// server, feeding the client bytes `chunk` at a time.
fn play_with(
    b: Arc<Behaviour>,
    catalog: Option<Arc<dyn Catalog>>,
    trace: &str,
    chunk: usize,
) -> Run {
    let mut segments: Vec<Vec<u8>> = vec![Vec::new()];
    for l in trace.lines().map(str::trim_start) {
        if let Some(c) = l
            .strip_prefix("C: ")
            .or(if l == "C:" { Some("") } else { None })
        {
            let seg = segments.last_mut().unwrap();
            seg.extend_from_slice(c.as_bytes());
            seg.extend_from_slice(b"\r\n");
        } else if l == "* TLS" {
            segments.push(Vec::new());
        }
    }
    let mut server = Server::new(b, catalog);
    let mut parser = ReplyParser::new();
    let mut replies = Vec::new();
    let mut segs = segments.into_iter();
    let mut input = segs.next().unwrap_or_default();
    let mut fed = 0;
    loop {
        let mut stop = false;
        while let Some(a) = server.poll() {
            match a {
                Action::Write(w) => {
                    parser.push(&w);
                    while let Some(r) = parser.next_reply() {
                        replies.push(r.unwrap().display_lines()[0].clone());
                    }
                }
                Action::Pause(_) => {}
                Action::Trickle(w, _) => {
                    parser.push(&w);
                    while let Some(r) = parser.next_reply() {
                        replies.push(r.unwrap().display_lines()[0].clone());
                    }
                }
                Action::StartTls(_) => {
                    server.take_early_bytes();
                    server.tls_started();
                    replies.push("* TLS".into());
                    input = segs.next().unwrap_or_default();
                    fed = 0;
                }
                Action::Close => {
                    replies.push("* close".into());
                    stop = true;
                }
                Action::Silence => {
                    replies.push("* silence".into());
                    stop = true;
                }
            }
        }
        if stop || fed >= input.len() {
            break;
        }
        let end = (fed + chunk).min(input.len());
        server.push(&input[fed..end]);
        fed = end;
    }
    server.closed_by_client();
    Run {
        replies,
        verdict: server.verdict(),
        log: server.take_log(),
    }
}

/// Plays `trace` at every chunk size; checks each `S:` line is the prefix of the
/// matching reply; returns the last run.
fn check(b: Arc<Behaviour>, trace: &str) -> Run {
    check_with(b, None, trace)
}

fn check_with(b: Arc<Behaviour>, catalog: Option<Arc<dyn Catalog>>, trace: &str) -> Run {
    let want: Vec<String> = trace
        .lines()
        .map(str::trim_start)
        .filter_map(|l| {
            l.strip_prefix("S: ")
                .map(str::to_string)
                .or_else(|| (l.starts_with("* ")).then(|| l.to_string()))
        })
        .collect();
    let mut last = None;
    for &chunk in CHUNKS {
        let run = play_with(b.clone(), catalog.clone(), trace, chunk);
        let got = &run.replies;
        assert_eq!(
            got.len(),
            want.len(),
            "chunk {chunk}: replies {got:#?}\nwant {want:#?}"
        );
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g.starts_with(w.as_str()),
                "chunk {chunk}: `{g}` is not `{w}…`\nall: {got:#?}"
            );
        }
        let log = run.log.join("\n");
        assert!(
            !log.contains(SENTINEL) && !log.contains(&plain_ir("you@gmail.com")),
            "credentials in the log: {log}"
        );
        last = Some(run);
    }
    last.unwrap()
}

fn rules(v: &Verdict) -> Vec<&'static str> {
    v.findings.iter().map(|f| f.rule).collect()
}

const TO_TLS: &str = "
    S: 220 smtp.gmail.com
    C: EHLO client.example
    S: 250-smtp.gmail.com
    C: STARTTLS
    S: 220 2.0.0
    * TLS
    C: EHLO client.example
    S: 250-smtp.gmail.com";

#[test]
fn smtplib_retrying_login_after_534_gets_534_again_never_503() {
    // Python smtplib: AUTH PLAIN with an initial response, then on failure AUTH LOGIN
    // (it reads a 503 as "already authenticated": that must be impossible).
    let run = check(
        bundled("gmail-587-app-password-required"),
        &format!(
            "{TO_TLS}
            C: AUTH PLAIN {}
            S: 534-5.7.9 Application-specific password required
            C: AUTH LOGIN {}
            S: 334 UGFzc3dvcmQ6
            C: {}
            S: 534-5.7.9
            C: QUIT
            S: 221 2.0.0
            * close",
            plain_ir("you@gmail.com"),
            B64.encode("you@gmail.com"),
            B64.encode(SENTINEL)
        ),
    );
    assert!(run.verdict.result_delivered);
    assert_eq!(rules(&run.verdict), ["auth-after-permanent-failure"]);
    assert!(run.verdict.passed(false) && !run.verdict.passed(true));
}

#[test]
fn every_auth_form_gets_the_fixture_result() {
    let b = || bundled("gmail-587-bad-credentials");
    let user = B64.encode("someone@else.example");
    let pw = B64.encode(SENTINEL);
    for (name, exchange) in [
        ("PLAIN without initial response", format!("C: AUTH PLAIN\nS: 334\nC: {}\nS: 535-5.7.8", plain_ir("x@y"))),
        ("LOGIN", format!("C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: {user}\nS: 334 UGFzc3dvcmQ6\nC: {pw}\nS: 535-5.7.8")),
        ("LOGIN with initial response", format!("C: AUTH LOGIN {user}\nS: 334 UGFzc3dvcmQ6\nC: {pw}\nS: 535-5.7.8")),
        ("XOAUTH2", format!("C: AUTH XOAUTH2 {}\nS: 334 eyJ\nC:\nS: 535-5.7.8", B64.encode("user=a@b\x01auth=Bearer t\x01\x01"))),
        ("OAUTHBEARER without initial response", format!("C: AUTH OAUTHBEARER\nS: 334\nC: {}\nS: 334 eyJ\nC: AQ==\nS: 535-5.7.8", B64.encode("n,a=a@b,\x01auth=Bearer t\x01\x01"))),
        ("PLAIN with `=` (empty initial response)", "C: AUTH PLAIN =\nS: 535-5.7.8".to_string()),
        ("cancelled with *", "C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: *\nS: 501 5.7.0".to_string()),
        ("undecodable response", "C: AUTH PLAIN\nS: 334\nC: !!!\nS: 501 5.5.2".to_string()),
        ("a mechanism not advertised", "C: AUTH CRAM-MD5\nS: 504 5.5.4".to_string()),
    ] {
        let run = check(b(), &format!("{TO_TLS}\n{exchange}\nC: QUIT\nS: 221\n* close"));
        let delivered = !["cancel", "undecodable", "not advertised"]
            .iter()
            .any(|w| name.contains(w));
        assert_eq!(run.verdict.result_delivered, delivered, "{name}");
    }
}

#[test]
fn closing_without_quit_after_the_result_is_normal() {
    let run = check(
        bundled("gmail-587-plain-auth-ok"),
        &format!(
            "{TO_TLS}\nC: AUTH PLAIN {}\nS: 235 2.7.0",
            plain_ir("any@body.example")
        ),
    );
    assert!(run.verdict.result_delivered && run.verdict.findings.is_empty());
    assert!(run.verdict.passed(true));
}

#[test]
fn after_a_successful_auth_a_second_auth_gets_503() {
    // RFC 4954 §4: the one case where 503 is right.
    check(
        bundled("gmail-587-plain-auth-ok"),
        &format!(
            "{TO_TLS}\nC: AUTH PLAIN {}\nS: 235\nC: AUTH PLAIN {}\nS: 503 5.5.1",
            plain_ir("a@b"),
            plain_ir("a@b")
        ),
    );
}

#[test]
fn conforming_commands_get_conforming_replies() {
    let run = check(
        bundled("gmail-587-plain-send-ok"),
        &format!(
            "S: 220
            C: HELP
            S: 214
            C: NOOP
            S: 250 2.0.0
            C: MAIL FROM:<a@b>
            S: 503 5.5.1
            C: HELO client.example
            S: 250 smtp.gmail.com
            C: STARTTLS
            S: 454 4.7.0
            C: EHLO client.example
            S: 250-smtp.gmail.com
            C: XYZZY
            S: 500 5.5.2
            C: STARTTLS now
            S: 501 5.5.4
            C: STARTTLS
            S: 220 2.0.0
            * TLS
            C: STARTTLS
            S: 554 5.5.1
            C: EHLO client.example
            S: 250-
            C: MAIL FROM:<any@where.example>
            S: 530 5.7.0 Authentication required
            C: AUTH PLAIN {}
            S: 235
            C: MAIL FROM:<any@where.example> SIZE=10
            S: 250 2.1.0
            C: RSET
            S: 250 2.0.0
            C: RCPT TO:<x@y>
            S: 503 5.5.1 MAIL first
            C: MAIL FROM:<any@where.example>
            S: 250
            C: RCPT TO:<nobody@anywhere.example>
            S: 250 2.1.5
            C: VRFY x
            S: 252
            C: DATA
            S: 354
            C: Subject: hi
            C:
            C: ..dot-stuffed
            C: .
            S: 250 2.0.0 OK  1746829334
            C: QUIT
            S: 221
            * close",
            plain_ir("any@where.example")
        ),
    );
    assert!(run.verdict.passed(true), "{:?}", run.verdict);
}

#[test]
fn pipelined_group_and_bdat() {
    let run = check(
        bundled("gmail-587-plain-send-ok"),
        &format!(
            "{TO_TLS}
            C: AUTH PLAIN {}
            S: 235
            C: MAIL FROM:<a@b>
            C: RCPT TO:<c@d>
            C: BDAT 7 LAST
            C: hello
            S: 250 2.1.0
            S: 250 2.1.5
            S: 250 2.0.0 OK  1746829334
            C: MAIL FROM:<a@b>
            S: 250
            C: RCPT TO:<c@d>
            S: 250
            C: BDAT 5
            C: abc
            S: 250 2.0.0 5 octets
            C: BDAT 0 LAST
            S: 250 2.0.0 OK  1746829334",
            plain_ir("a@b")
        ),
    );
    assert!(run.verdict.passed(true), "{:?}", run.verdict);
}

#[test]
fn bare_lf_and_long_lines_are_findings() {
    let mut s = Server::new(bundled("gmail-587-plain-send-ok"), None);
    s.push(b"EHLO x\n");
    s.push(format!("NOOP {}\r\n", "x".repeat(600)).as_bytes());
    let out: Vec<Action> = std::iter::from_fn(|| s.poll()).collect();
    assert_eq!(out.len(), 3, "greeting, EHLO and NOOP answered: {out:?}");
    assert_eq!(rules(&s.verdict()), ["bare-lf", "line-too-long"]);
}

#[test]
fn stripped_starttls_and_credentials_in_clear_are_security_findings() {
    let run = check(
        bundled("gmail-587-starttls-stripped"),
        &format!(
            "S: 220
            C: EHLO client.example
            S: 250-smtp.gmail.com
            C: STARTTLS
            S: 454 4.7.0
            C: AUTH PLAIN {}
            S: 502 5.5.1
            C: MAIL FROM:<a@b>
            S: 530 5.7.0 Must issue a STARTTLS command first
            C: QUIT
            S: 221
            * close",
            plain_ir("a@b")
        ),
    );
    assert!(run.verdict.result_delivered);
    let r = rules(&run.verdict);
    assert!(
        r.contains(&"auth-without-tls") && r.contains(&"mail-without-tls"),
        "{r:?}"
    );
    assert!(!run.verdict.passed(false));
    // A client that stops at the stripped EHLO passes.
    let ok = check(
        bundled("gmail-587-starttls-stripped"),
        "S: 220\nC: EHLO c.example\nS: 250-smtp.gmail.com\nC: QUIT\nS: 221\n* close",
    );
    assert!(ok.verdict.passed(true));
}

#[test]
fn auth_before_starttls_gets_gmails_530() {
    let run = check(
        bundled("gmail-587-auth-before-starttls"),
        "S: 220\nC: EHLO c.example\nS: 250-smtp.gmail.com\nC: AUTH LOGIN\nS: 530 5.7.0 Must issue\nC: QUIT\nS: 221\n* close",
    );
    let r = rules(&run.verdict);
    assert!(
        r.contains(&"auth-without-tls") && r.contains(&"auth-not-advertised"),
        "{r:?}"
    );
}

/// An app that skips the login because the EHLO offered no AUTH (curl does) and sends
/// MAIL in clear still gets Gmail's 530: the provider wants TLS first, and a 250 here
/// would tell the app its message went out.
#[test]
fn mail_in_clear_gets_the_tls_first_refusal_the_fixture_gave_auth() {
    let run = check(
        bundled("gmail-587-auth-before-starttls"),
        "S: 220\nC: EHLO c.example\nS: 250-smtp.gmail.com\nC: MAIL FROM:<a@example.com>\nS: 530 5.7.0 Must issue a STARTTLS command first\nC: QUIT\nS: 221\n* close",
    );
    assert!(run.verdict.result_delivered, "{:?}", rules(&run.verdict));
}

#[test]
fn a_421_closes_and_only_later_lines_are_carrying_on() {
    let trace = format!(
        "{TO_TLS}
        C: AUTH PLAIN {}
        S: 235
        C: MAIL FROM:<a@b>
        C: RCPT TO:<c@d>
        C: DATA
        S: 421 4.7.0
        * close",
        plain_ir("a@b")
    );
    let run = check(bundled("gmail-587-421-at-mail"), &trace);
    assert!(run.verdict.result_delivered);
    assert!(
        run.verdict.findings.is_empty(),
        "{:?}",
        run.verdict.findings
    );
    // A line that arrives after the 421 was sent is the client carrying on.
    let mut s = Server::new(bundled("gmail-587-421-at-ehlo"), None);
    s.push(b"EHLO x\r\n");
    while s.poll().is_some() {}
    s.push(b"MAIL FROM:<a@b>\r\n");
    assert_eq!(rules(&s.verdict()), ["continued-after-421"]);
}

#[test]
fn garbage_endless_lines_and_silence_are_bounded() {
    let b = bundled("gmail-587-plain-send-ok");
    let mut s = Server::new(b.clone(), None);
    for _ in 0..MAX_ERRORS {
        s.push(b"\x00\xff garbage\r\n");
    }
    let mut out = Vec::new();
    while let Some(a) = s.poll() {
        out.push(a);
    }
    assert_eq!(out.last(), Some(&Action::Close));
    let Some(Action::Write(w)) = out.get(out.len() - 2) else {
        panic!("{out:?}")
    };
    assert!(w.starts_with(b"421 4.7.0"));

    let mut s = Server::new(b.clone(), None);
    s.push(&vec![b'A'; MAX_COMMAND_LINE + 10]);
    let out: Vec<Action> = std::iter::from_fn(|| s.poll()).collect();
    assert_eq!(out.last(), Some(&Action::Close));
    assert!(matches!(&out[out.len() - 2], Action::Write(w) if w.starts_with(b"500 5.5.6")));
    assert_eq!(rules(&s.verdict()), ["line-too-long"]);

    let mut s = Server::new(b, None);
    while s.poll().is_some() {}
    s.timed_out();
    let out: Vec<Action> = std::iter::from_fn(|| s.poll()).collect();
    assert!(matches!(&out[0], Action::Write(w) if w.starts_with(b"421 4.4.2")));
    assert_eq!(out[1], Action::Close);
}

#[test]
fn bytes_sent_after_starttls_before_the_handshake_are_never_commands() {
    let mut s = Server::new(bundled("gmail-587-plain-auth-ok"), None);
    s.push(b"EHLO x\r\nSTARTTLS\r\nAUTH PLAIN injected\r\n");
    let out: Vec<Action> = std::iter::from_fn(|| s.poll()).collect();
    assert!(matches!(out.last(), Some(Action::StartTls(_))));
    assert!(s.take_early_bytes() > 0);
    s.tls_started();
    s.push(b"EHLO x\r\n");
    let out: Vec<Action> = std::iter::from_fn(|| s.poll()).collect();
    assert!(matches!(&out[0], Action::Write(w) if w.starts_with(b"250-")));
    assert_eq!(rules(&s.verdict()), ["data-before-tls-handshake"]);
}

#[test]
fn a_bad_certificate_accepted_is_a_security_finding() {
    let mut b = (*bundled("gmail-587-plain-auth-ok")).clone();
    b.certificate = ServerCert::WrongName;
    let b = Arc::new(b);
    let run = check(
        b.clone(),
        &format!("{TO_TLS}\nC: AUTH PLAIN {}\nS: 235", plain_ir("a@b")),
    );
    assert!(!run.verdict.result_delivered);
    assert_eq!(rules(&run.verdict), ["accepted-bad-certificate"]);
    // A client that refuses the handshake gets the result.
    let mut s = Server::new(b, None);
    s.push(b"EHLO x\r\nSTARTTLS\r\n");
    while s.poll().is_some() {}
    s.tls_failed("bad certificate");
    assert!(s.verdict().passed(true));
}

#[test]
fn require_user_refuses_other_accounts() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/gmail-587-plain-auth-ok.fixture"
    ))
    .unwrap()
    .replace("# expect: ok", "# expect: ok\n# require: user");
    let b = Arc::new(Behaviour::from_fixture(&Fixture::parse(&text).unwrap()).unwrap());
    check(
        b.clone(),
        &format!(
            "{TO_TLS}\nC: AUTH PLAIN {}\nS: 535 5.7.8",
            plain_ir("other@gmail.com")
        ),
    );
    check(
        b,
        &format!(
            "{TO_TLS}\nC: AUTH PLAIN {}\nS: 235",
            plain_ir("you@gmail.com")
        ),
    );
}

struct Two(Arc<Behaviour>);
impl Catalog for Two {
    fn pick(&self, key: &str, _mode: TlsMode) -> Option<Arc<Behaviour>> {
        self.0.name.ends_with(key).then(|| self.0.clone())
    }
}

#[test]
fn the_auth_user_chooses_the_scenario() {
    let cat: Arc<dyn Catalog> = Arc::new(Two(bundled("gmail-587-app-password-required")));
    let run = check_with(
        bundled("gmail-587-plain-send-ok"),
        Some(cat),
        &format!(
            "{TO_TLS}\nC: AUTH PLAIN {}\nS: 534-5.7.9",
            plain_ir("app-password-required@example.com")
        ),
    );
    assert_eq!(run.verdict.scenario, "gmail-587-app-password-required");
    assert!(run.verdict.result_delivered);
}

#[test]
fn implicit_tls_starts_with_the_handshake() {
    let run = check(
        bundled("gmail-465-login-ok"),
        &format!(
            "* TLS\nS: 220 smtp.gmail.com\nC: EHLO x\nS: 250-\nC: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: {}\nS: 334 UGFzc3dvcmQ6\nC: {}\nS: 235",
            B64.encode("a@b"),
            B64.encode(SENTINEL)
        ),
    );
    assert!(run.verdict.passed(true));
}

#[test]
fn silence_and_close_steps() {
    let head = "# name: t\n# story: s\n# host: h\n# port: 25\n# mode: none\n# expect: ok\n\n";
    for (step, want) in [("* silence", Action::Silence), ("* close", Action::Close)] {
        let f = Fixture::parse(&format!(
            "{head}S: 220 h\nC: EHLO {{any}}\nS: 250 h\nC: MAIL FROM:<{{any}}>\n{step}\n"
        ))
        .unwrap();
        let mut s = Server::new(Arc::new(Behaviour::from_fixture(&f).unwrap()), None);
        s.push(b"EHLO x\r\nMAIL FROM:<a@b>\r\n");
        let out: Vec<Action> = std::iter::from_fn(|| s.poll()).collect();
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(out[2], want);
    }
}

#[test]
fn lines_that_are_no_command_are_logged_by_length_only() {
    // A client that sends its LOGIN password although the server refused the
    // mechanism: the line is answered 500 and never shown.
    let pw = B64.encode(SENTINEL);
    let run = check(
        bundled("gmail-587-bad-credentials"),
        &format!("{TO_TLS}\nC: AUTH CRAM-MD5\nS: 504\nC: {pw}\nS: 500 5.5.2"),
    );
    let log = run.log.join("\n");
    assert!(!log.contains(&pw), "{log}");
    assert!(log.contains("<unrecognised line: 24 bytes>"), "{log}");
}

#[test]
fn a_trickle_step_slows_the_next_write() {
    let head = "# name: t\n# story: s\n# host: h\n# port: 25\n# mode: none\n# expect: ok\n\n";
    let f = Fixture::parse(&format!(
        "{head}~ trickle 5ms\nS: 220 h\nC: EHLO {{any}}\nS: 250 h\n"
    ))
    .unwrap();
    assert_eq!(Fixture::parse(&f.to_text()).unwrap().steps, f.steps);
    let mut s = Server::new(Arc::new(Behaviour::from_fixture(&f).unwrap()), None);
    assert_eq!(
        s.poll(),
        Some(Action::Trickle(
            b"220 h\r\n".to_vec(),
            Duration::from_millis(5)
        ))
    );
    s.push(b"EHLO x\r\n");
    assert_eq!(s.poll(), Some(Action::Write(b"250 h\r\n".to_vec())));
    assert!(Fixture::parse(&format!("{head}~ trickle 0ms\nS: 220 h\n")).is_err());
}
