//! Diagnoses end to end, in the spirit of rustc's tidy: every registered code has an
//! explain page and is emitted by the *probe* (not just by the mapping function) in a
//! fixture scenario or in a scripted loopback case below; no probe run emits a code
//! without a page. The cases include older and newer wordings and servers that send no
//! enhanced status codes.

use crate::common::*;
use smtprobe::certs::{ServerCert, TestPki};
use smtprobe::diagnosis::codes;
use smtprobe::probe::{MailTarget, TlsChoice};
use smtprobe::session::{AuthChoice, AuthConfig, Credential};
use smtprobe::{check, Config, Secret, Stage};
use std::collections::BTreeSet;
use std::time::Duration;

/// Codes the probe cannot be made to emit from loopback without leaving the machine,
/// with the reason. They are covered by the diagnosis layer's unit tests.
const NOT_REACHABLE_ON_LOOPBACK: &[(&str, &str)] = &[
    (
        "dns.lookup-failed",
        "needs a resolver that fails (SERVFAIL/timeout); tests may not use the network's resolver",
    ),
    (
        "connect.unreachable",
        "needs an address without a route; tests may only target loopback addresses",
    ),
];

/// Codes that need a live counterpart a static script cannot play (a SCRAM server that
/// computes from our random nonce, a real SOCKS5/HTTP proxy) or client flags this table
/// does not set (UTF-8 addresses): `parity::parity_codes_are_emitted` runs each one.
pub const EMITTED_IN_PARITY: &[&str] = &[
    "auth.server-not-verified",
    "send.extension-not-offered",
    "proxy.unreachable",
    "proxy.auth-failed",
    "proxy.destination-refused",
    "proxy.protocol-error",
];

/// One scripted case: the server's script, how the client is configured, the verdict.
struct Case {
    name: &'static str,
    script: Vec<Step>,
    tls: TlsChoice,
    user: bool,
    choice: AuthChoice,
    mail: bool,
    cert: ServerCert,
    stage: Stage,
    code: &'static str,
}

fn case(name: &'static str, script: Vec<Step>, stage: Stage, code: &'static str) -> Case {
    Case {
        name,
        script,
        tls: TlsChoice::Implicit,
        user: true,
        choice: AuthChoice::Auto,
        mail: false,
        cert: ServerCert::Valid,
        stage,
        code,
    }
}

/// Implicit TLS, greeting, EHLO with these extension lines (after the domain line).
fn greeted(ehlo_ext: &str) -> Vec<Step> {
    let mut reply = String::from("250-mx.example.org\n");
    let ext: Vec<&str> = ehlo_ext
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    for (i, l) in ext.iter().enumerate() {
        let sep = if i + 1 == ext.len() { ' ' } else { '-' };
        reply.push_str(&format!("250{sep}{l}\n"));
    }
    vec![
        Step::StartTls,
        s("220 mx.example.org ESMTP Postfix"),
        Step::Expect("EHLO"),
        s(&reply),
    ]
}

fn then(mut v: Vec<Step>, more: Vec<Step>) -> Vec<Step> {
    v.extend(more);
    v
}

fn quit() -> Vec<Step> {
    vec![Step::Expect("QUIT"), s("221 2.0.0 Bye")]
}

fn auth_fails(name: &'static str, lines: &str, code: &'static str) -> Case {
    case(
        name,
        then(
            greeted("PIPELINING\nAUTH PLAIN LOGIN"),
            then(vec![Step::Expect("AUTH PLAIN"), s(lines)], quit()),
        ),
        Stage::Auth,
        code,
    )
}

fn authed_then(lines: Vec<Step>) -> Vec<Step> {
    then(
        greeted("AUTH PLAIN LOGIN"),
        then(
            vec![
                Step::Expect("AUTH PLAIN"),
                s("235 2.7.0 Authentication successful"),
            ],
            lines,
        ),
    )
}

fn cases() -> Vec<Case> {
    let mut v = vec![
        case("greeting rejected", vec![Step::StartTls, s("554 5.7.1 No SMTP service here"), Step::Any, s("221 bye")], Stage::Greeting, "greeting.rejected"),
        case("closed after EHLO", vec![Step::StartTls, s("220 mx ESMTP"), Step::Expect("EHLO"), Step::Close], Stage::Ehlo, "server.closed"),
        case("SSH banner", vec![Step::StartTls, s("SSH-2.0-OpenSSH_9.2p1 Debian-2"), Step::Sleep(Duration::from_millis(300))], Stage::Greeting, "protocol.malformed-reply"),
        case(
            "talks out of turn",
            vec![Step::StartTls, Step::Send(b"220 mx ESMTP\r\n250 surprise\r\n".to_vec()), Step::Sleep(Duration::from_millis(300))],
            Stage::Greeting,
            "protocol.unexpected-reply",
        ),
        case("EHLO refused", vec![Step::StartTls, s("220 mx ESMTP"), Step::Expect("EHLO"), s("550 5.7.1 Access denied"), Step::Any, s("221 bye")], Stage::Ehlo, "ehlo.rejected"),
        case("EHLO name refused", vec![Step::StartTls, s("220 mx ESMTP"), Step::Expect("EHLO"), s("501 5.5.4 Invalid EHLO argument"), Step::Any, s("221 bye")], Stage::Ehlo, "ehlo.rejected"),
        case("no AUTH even over TLS", then(greeted("PIPELINING\n8BITMIME"), quit()), Stage::Auth, "auth.not-offered"),
        case("only DIGEST-MD5 and GSSAPI", then(greeted("AUTH DIGEST-MD5 GSSAPI"), quit()), Stage::Auth, "auth.mechanism-unsupported"),
        case(
            "HELO only: no AUTH possible",
            vec![Step::StartTls, s("220 mx SMTP"), Step::Expect("EHLO"), s("502 5.5.1 unknown command"), Step::Expect("HELO"), s("250 mx"), Step::Any, s("221 bye")],
            Stage::Ehlo,
            "ehlo.not-esmtp",
        ),
        auth_fails("Postfix/Dovecot temporary", "454 4.7.0 Temporary authentication failure", "auth.temporary-failure"),
        auth_fails("Exim bad credentials, no enhanced code", "535 Incorrect authentication data", "auth.bad-credentials"),
        auth_fails("bad credentials, bare 535", "535 Authentication failed", "auth.bad-credentials"),
        auth_fails("Gmail bad credentials, old wording", "535-5.7.8 Username and Password not accepted. Learn more at\n535 5.7.8  https://support.google.com/mail/?p=BadCredentials x - gsmtp", "auth.bad-credentials"),
        auth_fails("Yahoo-style 535 5.7.0", "535 5.7.0 (#AUTH005) Too many bad auth attempts.", "auth.too-many-attempts"),
        auth_fails("mechanism refused by server", "504 5.5.4 Unrecognized authentication type", "auth.mechanism-unsupported"),
        auth_fails("response not decodable", "501 5.5.2 Cannot decode response", "auth.rejected"),
        auth_fails("503 at AUTH", "503 5.5.1 Error: already authenticated", "auth.protocol-violation"),
        {
            let mut c = case(
                "success before credentials",
                then(greeted("AUTH LOGIN"), then(vec![Step::Expect("AUTH LOGIN"), s("235 2.7.0 ok")], quit())),
                Stage::Auth,
                "auth.protocol-violation",
            );
            c.choice = AuthChoice::Login;
            c
        },
        {
            let mut c = case(
                "sender not owned",
                authed_then(then(
                    vec![
                        Step::Expect("MAIL FROM:"),
                        s("553 5.7.1 <me@example.org>: Sender address rejected: not owned by user probe"),
                    ],
                    quit(),
                )),
                Stage::Mail,
                "send.sender-rejected",
            );
            c.mail = true;
            c
        },
        {
            let mut c = case(
                "relaying denied",
                authed_then(then(
                    vec![
                        Step::Expect("MAIL FROM:"),
                        s("250 2.1.0 Ok"),
                        Step::Expect("RCPT TO:"),
                        s("554 5.7.1 <friend@example.com>: Relay access denied"),
                    ],
                    quit(),
                )),
                Stage::Rcpt,
                "send.sender-rejected",
            );
            c.mail = true;
            c
        },
        {
            let mut c = case(
                "unknown recipient",
                authed_then(then(
                    vec![
                        Step::Expect("MAIL FROM:"),
                        s("250 2.1.0 Ok"),
                        Step::Expect("RCPT TO:"),
                        s("550 5.1.1 <friend@example.com>: Recipient address rejected: User unknown in virtual mailbox table"),
                    ],
                    quit(),
                )),
                Stage::Rcpt,
                "send.recipient-rejected",
            );
            c.mail = true;
            c
        },
        {
            let mut c = case(
                "rejected at end of data",
                authed_then(then(
                    vec![
                        Step::Expect("MAIL FROM:"),
                        s("250 2.1.0 Ok"),
                        Step::Expect("RCPT TO:"),
                        s("250 2.1.5 Ok"),
                        Step::Expect("DATA"),
                        s("354 End data with <CR><LF>.<CR><LF>"),
                        Step::Body,
                        s("554 5.7.1 Message rejected as spam"),
                    ],
                    quit(),
                )),
                Stage::Data,
                "send.rejected",
            );
            c.mail = true;
            c
        },
    ];
    // STARTTLS-mode cases.
    let mut refused = case(
        "STARTTLS refused",
        vec![
            s("220 mx ESMTP"),
            Step::Expect("EHLO"),
            s("250-mx\n250 STARTTLS"),
            Step::Expect("STARTTLS"),
            s("454 4.7.0 TLS not available due to local problem"),
            Step::Any,
            s("221 bye"),
        ],
        Stage::Starttls,
        "starttls.rejected",
    );
    refused.tls = TlsChoice::Starttls;
    v.push(refused);
    let mut garbage_tls = case(
        "garbage instead of a TLS handshake",
        vec![
            s("220 mx ESMTP"),
            Step::Expect("EHLO"),
            s("250-mx\n250 STARTTLS"),
            Step::Expect("STARTTLS"),
            s("220 2.0.0 Ready to start TLS"),
            Step::Sleep(Duration::from_millis(100)),
            Step::Send(b"\x15\x03\x03\x00\x02\x02\x28".to_vec()),
            Step::Sleep(Duration::from_millis(300)),
        ],
        Stage::Tls,
        "tls.handshake-failed",
    );
    garbage_tls.tls = TlsChoice::Starttls;
    v.push(garbage_tls);
    v
}

async fn run_case(
    pki: &TestPki,
    ca: &[rustls::pki_types::CertificateDer<'static>],
    c: Case,
) -> String {
    let server = Server::start(pki, c.cert, vec![c.script]).await;
    let mut config = Config::new("localhost");
    config.port = Some(server.addr.port());
    config.connect_to = Some("127.0.0.1".parse().unwrap());
    config.tls = c.tls;
    config.extra_roots = ca.to_vec();
    config.helo = Some("client.test".into());
    config.timeout = Duration::from_secs(2);
    if c.user {
        config.auth = Some(AuthConfig {
            user: "me@example.org".into(),
            credential: Credential::Password {
                secret: Secret::new("not-the-real-one"),
                choice: c.choice,
            },
        });
    }
    if c.mail {
        config.mail = Some(MailTarget {
            from: "me@example.org".into(),
            to: vec!["friend@example.com".into()],
        });
        config.pipelining = false;
    }
    let r = check(config).await.unwrap();
    assert_eq!(
        (r.failed_stage, r.diagnosis.code),
        (Some(c.stage), c.code),
        "{}: {:?}\n{}",
        c.name,
        r.failure,
        r.render(smtprobe::report::Style::plain())
    );
    assert!(
        !r.diagnosis.summary.is_empty() && !r.diagnosis.fix.is_empty(),
        "{}",
        c.name
    );
    r.diagnosis.code.to_owned()
}

/// A listener whose accept queue is full: further SYNs are dropped, so a connect waits
/// until its deadline (Linux drops SYNs to a full queue by default).
async fn black_hole() -> (tokio::net::TcpListener, Vec<std::net::TcpStream>, u16) {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..8 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
    }
    (listener, held, addr.port())
}

#[tokio::test]
async fn every_registered_code_is_emitted_by_the_probe() {
    let pki = pki();
    let ca = vec![pki.ca_der()];
    let mut emitted: BTreeSet<String> = BTreeSet::new();

    // 1. The bundled fixtures and transport scenarios.
    for s in smtprobe::demo::scenarios().unwrap() {
        let o = smtprobe::demo::run(&s).await.unwrap();
        assert!(o.as_expected(&s), "{}", s.name);
        emitted.insert(o.report.diagnosis.code.to_owned());
    }
    // 2. Scripted loopback cases.
    for c in cases() {
        emitted.insert(run_case(&pki, &ca, c).await);
    }
    // 3. Network-level cases that need no script.
    let mut c = Config::new("127.0.0.1");
    c.ip = smtprobe::transport::IpVersion::V6;
    let r = check(c).await.unwrap();
    assert_eq!(r.diagnosis.code, "dns.no-such-host");
    emitted.insert(r.diagnosis.code.into());

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = Config::new("127.0.0.1");
    c.port = Some(port);
    let r = check(c).await.unwrap();
    assert_eq!(r.diagnosis.code, "connect.refused");
    emitted.insert(r.diagnosis.code.into());

    let (_listener, held, port) = black_hole().await;
    let mut c = Config::new("127.0.0.1");
    c.port = Some(port);
    c.timeout = Duration::from_secs(1);
    let r = check(c).await.unwrap();
    drop(held);
    assert_eq!(r.diagnosis.code, "connect.timeout", "{:?}", r.failure);
    assert!(
        r.diagnosis.fix.contains("465") || r.diagnosis.fix.contains("587"),
        "{}",
        r.diagnosis.fix
    );
    emitted.insert(r.diagnosis.code.into());

    let mut c = Config::new("127.0.0.1");
    c.port = Some(1);
    c.tls = TlsChoice::None;
    let server = Server::start(
        &pki,
        ServerCert::Valid,
        vec![vec![
            s("220 lab"),
            Step::Expect("EHLO"),
            s("250-lab\n250 AUTH PLAIN"),
            Step::Expect("QUIT"),
            s("221 bye"),
        ]],
    )
    .await;
    c.port = Some(server.addr.port());
    c.auth = Some(AuthConfig {
        user: "me".into(),
        credential: Credential::Password {
            secret: Secret::new("x"),
            choice: AuthChoice::Auto,
        },
    });
    let r = check(c).await.unwrap();
    emitted.insert(r.diagnosis.code.into());

    let mut silent = Config::new("127.0.0.1");
    let server = Server::start(
        &pki,
        ServerCert::Valid,
        vec![vec![Step::Sleep(Duration::from_secs(3))]],
    )
    .await;
    silent.port = Some(server.addr.port());
    silent.tls = TlsChoice::None;
    silent.timeout = Duration::from_secs(1);
    let r = check(silent).await.unwrap();
    assert_eq!(r.diagnosis.code, "server.timeout");
    emitted.insert(r.diagnosis.code.into());

    // Every emitted code has a page; every registered code is emitted or listed above.
    let registered: BTreeSet<String> = codes::all().iter().map(|c| c.code.to_owned()).collect();
    for code in &emitted {
        let info = codes::lookup(code).unwrap_or_else(|| panic!("{code} emitted without a page"));
        assert!(
            !info.why.is_empty() && !info.fix.is_empty() && !info.wire.is_empty(),
            "{code}"
        );
    }
    let excused: BTreeSet<String> = NOT_REACHABLE_ON_LOOPBACK
        .iter()
        .map(|(c, _)| c.to_string())
        .chain(EMITTED_IN_PARITY.iter().map(|c| c.to_string()))
        .collect();
    let missing: Vec<&String> = registered
        .difference(&emitted)
        .filter(|c| !excused.contains(*c))
        .collect();
    assert!(missing.is_empty(), "codes no probe run emits: {missing:?}");
    for c in &excused {
        assert!(
            registered.contains(c) && !emitted.contains(c),
            "{c} is reachable now: remove it from the list"
        );
    }
}
