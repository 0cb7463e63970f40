//! Diagnoses end to end, in the spirit of rustc's tidy: every registered code has an
//! explain page and is emitted by the *probe* (not just by the mapping function) in a
//! fixture scenario or in a scripted loopback case below; no probe run emits a code
//! without a page. The cases include older and newer wordings and servers that send no
//! enhanced status codes.

use crate::common::*;
use smtprobe::diagnosis::codes;
use smtprobe::replay::{ServerCert, TestPki};
use smtprobe::{check, Config, Secret, Stage};
use smtprobe::{AuthChoice, AuthConfig, Credential};
use smtprobe::{MailTarget, TlsChoice};
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

/// One scripted case: the server's script (fixture steps, `common::fixture_server`),
/// how the client is configured, the verdict.
struct Case {
    name: &'static str,
    script: String,
    tls: TlsChoice,
    user: bool,
    choice: AuthChoice,
    mail: bool,
    cert: ServerCert,
    stage: Stage,
    code: &'static str,
}

fn case(name: &'static str, script: impl Into<String>, stage: Stage, code: &'static str) -> Case {
    Case {
        name,
        script: script.into(),
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
fn greeted(ehlo_ext: &str) -> String {
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
    format!(
        "* TLS\nS: 220 mx.example.org ESMTP Postfix\nC: EHLO {{any}}\n{}",
        replies(&reply)
    )
}

fn then(v: impl Into<String>, more: impl AsRef<str>) -> String {
    format!("{}\n{}", v.into(), more.as_ref())
}

fn quit() -> &'static str {
    "C: QUIT\nS: 221 2.0.0 Bye"
}

fn auth_fails(name: &'static str, lines: &str, code: &'static str) -> Case {
    case(
        name,
        then(
            greeted("PIPELINING\nAUTH PLAIN LOGIN"),
            then(
                format!(
                    "C: AUTH PLAIN <redacted: user me@example.org>\n{}",
                    replies(lines)
                ),
                quit(),
            ),
        ),
        Stage::Auth,
        code,
    )
}

fn authed_then(lines: impl AsRef<str>) -> String {
    then(
        greeted("AUTH PLAIN LOGIN"),
        then(
            "C: AUTH PLAIN <redacted: user me@example.org>
             S: 235 2.7.0 Authentication successful",
            lines,
        ),
    )
}

fn cases() -> Vec<Case> {
    let mut v = vec![
        case("greeting rejected", "* TLS\nS: 554 5.7.1 No SMTP service here\nC: {any}\nS: 221 bye", Stage::Greeting, "greeting.rejected"),
        case("closed after EHLO", "* TLS\nS: 220 mx ESMTP\nC: EHLO {any}\n* close", Stage::Ehlo, "server.closed"),
        case("SSH banner", "* TLS\nS!: SSH-2.0-OpenSSH_9.2p1 Debian-2\\r\\n\n~ 300ms", Stage::Greeting, "protocol.malformed-reply"),
        case(
            "talks out of turn",
            "* TLS\nS: 220 mx ESMTP\nS: 250 surprise\n~ 300ms",
            Stage::Greeting,
            "protocol.unexpected-reply",
        ),
        case("EHLO refused", "* TLS\nS: 220 mx ESMTP\nC: EHLO {any}\nS: 550 5.7.1 Access denied\nC: {any}\nS: 221 bye", Stage::Ehlo, "ehlo.rejected"),
        case("EHLO name refused", "* TLS\nS: 220 mx ESMTP\nC: EHLO {any}\nS: 501 5.5.4 Invalid EHLO argument\nC: {any}\nS: 221 bye", Stage::Ehlo, "ehlo.rejected"),
        case("no AUTH even over TLS", then(greeted("PIPELINING\n8BITMIME"), quit()), Stage::Auth, "auth.not-offered"),
        case("only DIGEST-MD5 and GSSAPI", then(greeted("AUTH DIGEST-MD5 GSSAPI"), quit()), Stage::Auth, "auth.mechanism-unsupported"),
        case(
            "HELO only: no AUTH possible",
            "* TLS\nS: 220 mx SMTP\nC: EHLO {any}\nS: 502 5.5.1 unknown command\nC: HELO {any}\nS: 250 mx\nC: {any}\nS: 221 bye",
            Stage::Ehlo,
            "ehlo.not-esmtp",
        ),
        auth_fails("Postfix/Dovecot temporary", "454 4.7.0 Temporary authentication failure", "auth.temporary-failure"),
        auth_fails("Exim bad credentials, no enhanced code", "535 Incorrect authentication data", "auth.bad-credentials"),
        auth_fails("bad credentials, bare 535", "535 Authentication failed", "auth.bad-credentials"),
        auth_fails("Gmail bad credentials, old wording", "535-5.7.8 Username and Password not accepted. Learn more at\n535 5.7.8  https://support.google.com/mail/?p=BadCredentials x - gsmtp", "auth.bad-credentials"),
        // Issue 11: #AUTH005 comes on the first try with an account password (pinned that bug).
        auth_fails("Yahoo-style 535 5.7.0", "535 5.7.0 (#AUTH005) Too many bad auth attempts.", "auth.app-password-required"),
        auth_fails("too many failures", "535 Too many authentication failures", "auth.too-many-attempts"),
        auth_fails("mechanism refused by server", "504 5.5.4 Unrecognized authentication type", "auth.mechanism-unsupported"),
        auth_fails("response not decodable", "501 5.5.2 Cannot decode response", "auth.rejected"),
        auth_fails("503 at AUTH", "503 5.5.1 Error: already authenticated", "auth.protocol-violation"),
        {
            let mut c = case(
                "success before credentials",
                then(greeted("AUTH LOGIN"), then("C: AUTH LOGIN\nS: 235 2.7.0 ok", quit())),
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
                    "C: MAIL FROM:{any}
                     S: 553 5.7.1 <me@example.org>: Sender address rejected: not owned by user probe",
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
                    "C: MAIL FROM:{any}
                     S: 250 2.1.0 Ok
                     C: RCPT TO:{any}
                     S: 554 5.7.1 <friend@example.com>: Relay access denied",
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
                    "C: MAIL FROM:{any}
                     S: 250 2.1.0 Ok
                     C: RCPT TO:{any}
                     S: 550 5.1.1 <friend@example.com>: Recipient address rejected: User unknown in virtual mailbox table",
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
                    "C: MAIL FROM:{any}
                     S: 250 2.1.0 Ok
                     C: RCPT TO:{any}
                     S: 250 2.1.5 Ok
                     C: DATA
                     S: 354 End data with <CR><LF>.<CR><LF>
                     C: <message>
                     S: 554 5.7.1 Message rejected as spam",
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
        "S: 220 mx ESMTP
         C: EHLO {any}
         S: 250-mx
         S: 250 STARTTLS
         C: STARTTLS
         S: 454 4.7.0 TLS not available due to local problem
         C: {any}
         S: 221 bye",
        Stage::Starttls,
        "starttls.rejected",
    );
    refused.tls = TlsChoice::Starttls;
    v.push(refused);
    let mut garbage_tls = case(
        "garbage instead of a TLS handshake",
        "S: 220 mx ESMTP
         C: EHLO {any}
         S: 250-mx
         S: 250 STARTTLS
         C: STARTTLS
         S: 220 2.0.0 Ready to start TLS
         ~ 100ms
         S!: \\x15\\x03\\x03\\x00\\x02\\x02\\x28
         ~ 300ms",
        // The bytes are a well-formed fatal alert (handshake_failure): since issue 11 the
        // alert is named (tls.alert-received), not a generic handshake failure.
        Stage::Tls,
        "tls.alert-received",
    );
    garbage_tls.tls = TlsChoice::Starttls;
    v.push(garbage_tls);
    // A server that offers only TLS 1.0: its ServerHello names the version.
    v.push(case(
        "TLS 1.0 only",
        format!("* read\n{}\n~ 300ms", raw(&server_hello(0x01))),
        Stage::Tls,
        "tls.version-too-old",
    ));
    // A handshake record that is not a ServerHello: a broken TLS peer, no alert.
    v.push(case(
        "nonsense handshake record",
        "* read\nS!: \\x16\\x03\\x03\\x00\\x04\\x63\\x00\\x00\\x00\n~ 300ms",
        Stage::Tls,
        "tls.handshake-failed",
    ));
    // A server that refuses TLS 1.2/1.3 with a protocol_version alert.
    v.push(case(
        "protocol_version alert",
        "* read\nS!: \\x15\\x03\\x01\\x00\\x02\\x02\\x46\n~ 300ms",
        Stage::Tls,
        "tls.version-too-old",
    ));
    v
}

/// A ServerHello record (RFC 5246 §7.4.1.3) with `server_version` 3.`minor`, a zero
/// random, no session id, TLS_RSA_WITH_AES_128_CBC_SHA and no compression.
fn server_hello(minor: u8) -> Vec<u8> {
    let mut body = vec![0x03, minor];
    body.extend_from_slice(&[0u8; 32]);
    body.extend_from_slice(&[0x00, 0x00, 0x2f, 0x00]);
    let mut hs = vec![0x02, 0x00, 0x00, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01, 0x00, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

async fn run_case(c: Case) -> String {
    let cert = smtprobe::fixture::cert_mode_name(c.cert);
    let server = FixtureServer::start(&[&format!("# certificate: {cert}\n{}", c.script)]).await;
    let mut config = Config::new("localhost");
    config.port = Some(server.addr.port());
    config.connect_to = Some("127.0.0.1".parse().unwrap());
    config.tls = c.tls;
    config.extra_roots = vec![server.ca_der.clone()];
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
        (r.failed_stage, r.diagnosis.code.as_str()),
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
    r.diagnosis.code.to_string()
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
    for s in smtprobe::app::demo::scenarios().unwrap() {
        let o = smtprobe::app::demo::run(&s).await.unwrap();
        assert!(o.as_expected(&s), "{}", s.name);
        emitted.insert(o.report.diagnosis.code.to_string());
    }
    // 2. Scripted loopback cases.
    for c in cases() {
        emitted.insert(run_case(c).await);
    }
    // 3. Network-level cases that need no script.
    let mut c = Config::new("127.0.0.1");
    c.ip = smtprobe::IpVersion::V6;
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
    // Issue 11: the likeliest cause first; on loopback it is this machine.
    assert!(
        r.diagnosis.summary.contains("nothing listens")
            && r.diagnosis.summary.contains("this machine"),
        "{}",
        r.diagnosis.summary
    );
    emitted.insert(r.diagnosis.code.into());

    // 4. Provider replies (fixtures/providers/) and client-certificate servers.
    for (name, o) in provider_fixture_outcomes().await {
        assert!(o.is_ok(), "{name}: {o:?}");
        emitted.insert(o.unwrap());
    }
    for tls13 in [true, false] {
        emitted.insert(client_certificate_required(&pki, &ca, tls13).await);
    }

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
    let server = FixtureServer::start(&["
        S: 220 lab
        C: EHLO {any}
        S: 250-lab
        S: 250 AUTH PLAIN
        C: QUIT
        S: 221 bye"])
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
    let server = FixtureServer::start(&["~ 3000ms"]).await;
    silent.port = Some(server.addr.port());
    silent.tls = TlsChoice::None;
    silent.timeout = Duration::from_secs(1);
    let r = check(silent).await.unwrap();
    assert_eq!(r.diagnosis.code, "server.timeout");
    emitted.insert(r.diagnosis.code.into());

    // Every emitted code has a page; every registered code is emitted or listed above.
    let registered: BTreeSet<String> = codes::all().iter().map(|c| c.code.to_string()).collect();
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

/// The fixtures of issue 11 (real reply texts from the fact sheet and public reports),
/// each replayed against the probe; returns per fixture its code, or what was wrong.
async fn provider_fixture_outcomes() -> Vec<(String, Result<String, String>)> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/providers");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "fixture"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 12, "{} provider fixtures", paths.len());
    let mut out = Vec::new();
    for path in paths {
        let f = smtprobe::replay::read_fixture_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let name = f.header.name.clone();
        out.push((name.clone(), provider_fixture(&f).await));
    }
    out
}

async fn provider_fixture(f: &smtprobe::fixture::Fixture) -> Result<String, String> {
    let scenario = smtprobe::app::demo::Scenario::of_fixture(f);
    let o = smtprobe::app::demo::run(&scenario)
        .await
        .map_err(|e| e.to_string())?;
    let d = &o.report.diagnosis;
    if !o.as_expected(&scenario) {
        return Err(format!(
            "got {:?} {}: {}",
            o.report.failed_stage, d.code, d.summary
        ));
    }
    if !o.server.iter().all(|r| r.followed) {
        return Err(format!(
            "the client did not follow the fixture: {:?}",
            o.server
        ));
    }
    let all_text = format!("{}\n{}\n{}", d.summary, d.fix, d.hints.join("\n"));
    let has = |needle: &str| {
        if all_text.contains(needle) {
            Ok(())
        } else {
            Err(format!("{}: no {needle:?} in: {all_text}", f.header.name))
        }
    };
    let lacks = |needle: &str| {
        if all_text.contains(needle) {
            Err(format!(
                "{}: {needle:?} should not be in: {all_text}",
                f.header.name
            ))
        } else {
            Ok(())
        }
    };
    match f.header.name.as_str() {
        "office365-587-basic-auth-not-supported" | "office365-587-139-basic-auth-disabled" => {
            has("end of December 2026")?;
            has("OAuth")?;
            if d.provider != Some("office365") {
                return Err(format!("provider {:?}", d.provider));
            }
        }
        "office365-587-139-wrong-password" => {
            has("credentials were incorrect")?;
            lacks("SMTP AUTH is disabled")?;
        }
        "office365-587-139-conditional-access" => has("Conditional Access")?,
        "outlook-on-office365-587-personal-address" => {
            if d.provider != Some("outlook") {
                return Err(format!("a hotmail.com address got {:?} advice", d.provider));
            }
            has("16 September 2024")?;
            lacks("Set-CASMailbox")?;
            lacks("tenant")?;
        }
        "office365-587-bad-outbound-sender" => {
            has("restricted-senders")?;
            has("not a Send As problem")?;
        }
        "yahoo-465-auth005-first-try" => {
            has("first try")?;
            has("app password")?;
            has("waiting does not help")?;
            lacks("wait,")?;
        }
        "exim-25-starttls-first-at-mail" => has("before TLS")?,
        "ses-587-identity-not-verified" => {
            has("verified")?;
            has("region")?;
        }
        "sendgrid-587-sender-identity" => has("Sender Identity")?,
        "generic-587-account-disabled" => lacks("SMTP AUTH")?,
        "gmail-587-foreign-from-ok" => has("silently rewrites From")?,
        other => return Err(format!("{other}: add its assertions here")),
    }
    Ok(d.code.to_string())
}

/// A server that requires a client certificate (mutual TLS), in TLS 1.3 (the alert
/// arrives after the client's side of the handshake) or TLS 1.2 (during it).
async fn client_certificate_required(
    pki: &TestPki,
    ca: &[rustls::pki_types::CertificateDer<'static>],
    tls13: bool,
) -> String {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        std::sync::Arc::new(pki.root_store()),
        provider.clone(),
    )
    .build()
    .unwrap();
    let versions: &[&rustls::SupportedProtocolVersion] = if tls13 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12]
    };
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(pki.server_chain().to_vec(), pki.server_key())
        .unwrap();
    let server = FixtureServer::start_with_tls(
        std::sync::Arc::new(config),
        &["* TLS\nS: 220 mx.example.org ESMTP\nC: {any}"],
    )
    .await;
    let mut config = Config::new("localhost");
    config.port = Some(server.addr.port());
    config.connect_to = Some("127.0.0.1".parse().unwrap());
    config.tls = TlsChoice::Implicit;
    config.extra_roots = ca.to_vec();
    config.timeout = Duration::from_secs(2);
    let r = check(config).await.unwrap();
    assert_eq!(
        (r.failed_stage, r.diagnosis.code.as_str()),
        (Some(Stage::Tls), "tls.client-certificate-required"),
        "TLS 1.3: {tls13}: {:?}\n{}",
        r.failure,
        r.render(smtprobe::report::Style::plain())
    );
    assert!(
        r.diagnosis.summary.contains("client certificate"),
        "{}",
        r.diagnosis.summary
    );
    assert!(
        !r.diagnosis.summary.contains("refuses your IP")
            && !r
                .diagnosis
                .hints
                .iter()
                .any(|h| h.contains("refuses your IP"))
    );
    r.diagnosis.code.to_string()
}

/// One triggering reply per rule of the table (rustc tidy style): each rule is chosen by
/// some reply, and the reply names the rule's stage and provider.
#[test]
fn every_rule_has_a_triggering_reply() {
    use smtprobe::diagnosis::{diagnose, rules, Context};
    use smtprobe::failure::Failure;
    use smtprobe::protocol::Reply;
    use smtprobe::TlsMode;
    use Stage::*;
    // (rule id, stage, host, reply lines). Real texts where a provider sends them.
    let triggers: &[(&str, Stage, &str, &[&str])] = &[
        ("any.421", Mail, "smtp.gmail.com", &["421 4.7.0 Try again later, closing connection. (MAIL) g4sm240722pgs.42 - gsmtp"]),
        ("greeting.refused", Greeting, "mx.example.org", &["554 5.7.1 No SMTP service here"]),
        ("ehlo.refused", Ehlo, "mx.example.org", &["501 5.5.4 Invalid EHLO argument"]),
        ("starttls.refused", Starttls, "mx.example.org", &["454 4.7.0 TLS not available due to local problem"]),
        ("auth.encryption-required", Auth, "mx.example.org", &["538 Encryption required for requested authentication mechanism"]),
        ("auth.encryption-required-enhanced", Auth, "mx.example.org", &["554 5.7.11 Encryption required for requested authentication mechanism"]),
        ("auth.starttls-first", Auth, "smtp.gmail.com", &["530 5.7.0 Must issue a STARTTLS command first. c133sm12701941wme.12 - gsmtp"]),
        ("auth.basic-auth-not-supported", Auth, "smtp.office365.com", &["550 5.7.30 Basic authentication is not supported for Client Submission."]),
        ("auth.139-basic-disabled", Auth, "smtp.office365.com", &["535 5.7.139 Authentication unsuccessful, basic authentication is disabled."]),
        ("auth.basic-auth-words", Auth, "mx.example.org", &["535 Authentication unsuccessful, basic authentication is disabled."]),
        ("auth.139-smtp-auth-disabled", Auth, "smtp.office365.com", &["535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."]),
        ("auth.smtp-auth-disabled-words", Auth, "smtp.office365.com", &["535 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox."]),
        ("auth.139-wrong-password", Auth, "smtp.office365.com", &["535 5.7.139 Authentication unsuccessful, the user credentials were incorrect."]),
        ("auth.139-policy", Auth, "smtp.office365.com", &["535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully. Contact your administrator."]),
        ("auth.139-other", Auth, "smtp.office365.com", &["535 5.7.139 Authentication unsuccessful"]),
        ("auth.account-disabled", Auth, "mx.example.org", &["535 5.7.13 User account disabled"]),
        ("auth.account-disabled-words", Auth, "mx.example.org", &["535 Your account is disabled"]),
        ("auth.yahoo-auth005", Auth, "smtp.mail.yahoo.com", &["535 5.7.0 (#AUTH005) Too many bad auth attempts."]),
        ("auth.too-many", Auth, "smtp.gmail.com", &["454 4.7.0 Too many login attempts, please try again later. e13sm15101671pgf.48 - gsmtp"]),
        ("auth.535-too-many", Auth, "mx.example.org", &["535 Too many authentication failures"]),
        ("auth.web-login", Auth, "smtp.gmail.com", &["534-5.7.14 <https://accounts.google.com/signin/continue?sarp=1&scc=1&plt=AKgnsbv_> Please log in via your web browser and", "534 5.7.14 then try again. y6sm6163530wrg.48 - gsmtp"]),
        ("auth.web-login-words", Auth, "mx.example.org", &["454 Please log in with your web browser first"]),
        ("auth.password-transition", Auth, "mx.example.org", &["432 A password transition is needed"]),
        ("auth.password-transition-enhanced", Auth, "mx.example.org", &["454 4.7.12 A password transition is needed"]),
        ("auth.app-password", Auth, "smtp.gmail.com", &["534-5.7.9 Application-specific password required. Learn more at", "534 5.7.9 https://support.google.com/mail/?p=InvalidSecondFactor z8-20020a170902ccc800b0016363b15acasm10419980ple.112 - gsmtp"]),
        ("auth.mechanism-too-weak", Auth, "mx.example.org", &["534 5.7.9 Authentication mechanism is too weak"]),
        ("auth.579", Auth, "mx.example.org", &["535 5.7.9 Denied"]),
        ("auth.app-password-words", Auth, "mx.example.org", &["454 Use an app password"]),
        ("auth.534-app-password", Auth, "mx.example.org", &["534 Application-specific password required"]),
        ("auth.534-weak-mechanism", Auth, "mx.example.org", &["534 Authentication mechanism is too weak"]),
        ("auth.534", Auth, "mx.example.org", &["534 Denied"]),
        ("auth.535", Auth, "smtp.office365.com", &["535 5.7.3 Authentication unsuccessful"]),
        ("auth.bad-credentials", Auth, "smtp.gmail.com", &["535-5.7.8 Username and Password not accepted. For more information, go to", "535 5.7.8  https://support.google.com/mail/?p=BadCredentials af79cd13be357-794f3061475sm18893085a.74 - gsmtp"]),
        ("auth.504", Auth, "mx.example.org", &["504 5.5.4 Unrecognized authentication type"]),
        ("auth.not-implemented", Auth, "mx.example.org", &["502 5.5.2 Error: command not recognized"]),
        ("auth.503", Auth, "mx.example.org", &["503 5.5.1 Error: already authenticated"]),
        ("auth.temporary", Auth, "mx.example.org", &["454 4.7.0 Temporary authentication failure"]),
        ("auth.other", Auth, "mx.example.org", &["501 5.5.2 Cannot decode response"]),
        ("send.starttls-first", Mail, "mail.example.net", &["550 5.7.0 Must issue a STARTTLS command first"]),
        ("send.530", Mail, "smtp.gmail.com", &["530-5.7.0 Authentication Required. For more information, go to", "530 5.7.0  https://support.google.com/mail/?p=WantAuthError y18-20020a92d0d2000000b002f685e47b47sm428291ila.54 - gsmtp"]),
        ("send.not-authenticated", Mail, "smtp.office365.com", &["550 5.7.57 Client not authenticated to send mail"]),
        ("send.auth-required-words", Mail, "mx.example.org", &["451 Authentication required"]),
        ("send.5xx-auth-required-words", Mail, "mx.example.org", &["550 Authentication required"]),
        ("send.outbound-sender-blocked", Mail, "smtp.office365.com", &["550 5.1.8 Access denied, bad outbound sender"]),
        ("send.outbound-spam-unverified", Data, "smtp-mail.outlook.com", &["451 OutboundSpamException RefuseQuota"]),
        ("send.5xx-outbound-spam-unverified", Data, "smtp-mail.outlook.com", &["554 5.2.0 OutboundSpamException RefuseQuota, HipNotify"]),
        ("send.identity-not-verified", Data, "email-smtp.us-east-1.amazonaws.com", &["554 Message rejected: Email address is not verified. The following identities failed the check in region US-EAST-1: you@example.com"]),
        ("send.mailbox-full", Rcpt, "mx.example.org", &["552 5.2.2 Mailbox full"]),
        ("send.mailbox-full-words", Rcpt, "mx.example.org", &["452 Mailbox full"]),
        ("send.limit", Data, "smtp.gmail.com", &["550-5.4.5 Daily user sending limit exceeded. For more information on Gmail", "550-5.4.5 sending limits go to", "550 5.4.5  https://support.google.com/a/answer/166852 d2e1a72fcca58-76e7d551493sm9728466b3a.112 - gsmtp"]),
        ("send.limit-words", Data, "mx.example.org", &["450 Rate limit reached"]),
        ("send.limit-basic-words", Data, "smtp.office365.com", &["554 Message rejected: SubmissionQuotaExceededException"]),
        ("send.552", Mail, "mx.example.org", &["552 Message size exceeds fixed maximum message size"]),
        ("send.too-large", Data, "smtp.gmail.com", &["523 5.3.4 Message too big for system"]),
        ("send.too-large-words", Data, "mx.example.org", &["451 Message too large"]),
        ("send.syntax", Rcpt, "mx.example.org", &["501 Bad address syntax"]),
        ("send.syntax-enhanced", Rcpt, "smtp.gmail.com", &["553 5.5.2 Syntax error. n68sm3960564vkd.0 - gsmtp"]),
        ("send.send-as-denied", Data, "smtp.office365.com", &["554 5.2.252 SendAsDenied; you@contoso.com not allowed to send as boss@contoso.com"]),
        ("send.send-as-denied-words", Data, "smtp.office365.com", &["550 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied"]),
        ("send.relay-denied", Rcpt, "mx.example.org", &["554 5.7.1 <friend@example.com>: Relay access denied"]),
        ("send.mail-sender", Mail, "mx.example.org", &["451 4.1.8 Domain of sender address does not resolve"]),
        ("send.mail-550", Mail, "mx.example.org", &["553 5.7.1 <x@y.org>: Sender address rejected: not owned by user me@example.org"]),
        ("send.mail-sender-words", Mail, "mx.example.org", &["451 Sender verification pending"]),
        ("send.data-sender-words", Data, "smtp.zoho.com", &["553 Relaying disallowed as sender@example.com"]),
        ("send.rcpt-enhanced", Rcpt, "mx.example.org", &["550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in virtual mailbox table"]),
        ("send.rcpt-basic", Rcpt, "mx.example.org", &["550 No such user here"]),
        ("send.rcpt-words", Rcpt, "mx.example.org", &["451 Recipient verification pending"]),
        ("yahoo.data-foreign-from", Data, "smtp.mail.yahoo.com", &["554 6.6.0 Error sending message for delivery: mailbox unavailable"]),
        ("send.other", Data, "mx.example.org", &["554 5.7.1 Message rejected as spam"]),
    ];
    let mut covered = std::collections::BTreeSet::new();
    for (id, stage, host, lines) in triggers {
        let reply = Reply::from_lines(lines).unwrap_or_else(|e| panic!("{id}: {e}"));
        let mut ctx = Context::new(host, 587, TlsMode::Starttls);
        ctx.user = Some("me@example.org");
        let d = diagnose(
            Some(&Failure::Reply {
                stage: *stage,
                reply,
            }),
            &ctx,
        );
        assert_eq!(
            d.rule,
            Some(*id),
            "{lines:?} chose {:?} ({})",
            d.rule,
            d.code
        );
        let rule = rules::all().iter().find(|r| r.id == *id).unwrap();
        assert_eq!(d.code, rule.code.code, "{id}");
        if let Some(p) = rule.provider {
            assert_eq!(d.provider, Some(p), "{id}");
        }
        covered.insert(*id);
    }
    let missing: Vec<&str> = rules::all()
        .iter()
        .map(|r| r.id)
        .filter(|id| !covered.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "rules without a triggering reply: {missing:?}"
    );
}

/// The precedence the issue asked for, on the replies that broke it: enhanced code
/// before key words ("too many" no longer beats 5.7.8; "mailbox"+"full" no longer
/// beats X.5.3), and OAuth does not turn a disabled SMTP AUTH into a token problem.
#[test]
fn enhanced_codes_win_over_key_words() {
    use smtprobe::diagnosis::{diagnose, Context};
    use smtprobe::failure::Failure;
    use smtprobe::protocol::Reply;
    use smtprobe::TlsMode;
    let ctx = Context::new("mx.example.org", 587, TlsMode::Starttls);
    let code = |stage, line: &str, ctx: &Context| {
        diagnose(
            Some(&Failure::Reply {
                stage,
                reply: Reply::from_lines(&[line]).unwrap(),
            }),
            ctx,
        )
        .code
    };
    assert_eq!(
        code(Stage::Auth, "535 5.7.8 Too many invalid credentials", &ctx),
        "auth.bad-credentials"
    );
    assert_eq!(
        code(
            Stage::Auth,
            "534 5.7.14 Too many attempts; please log in via your web browser",
            &ctx
        ),
        "auth.web-login-required"
    );
    assert_eq!(
        code(
            Stage::Rcpt,
            "452 4.5.3 Too many recipients; mailbox full",
            &ctx
        ),
        "send.quota-exceeded"
    );
    let mut o = Context::new("smtp.office365.com", 587, TlsMode::Starttls);
    o.mechanism = Some("XOAUTH2");
    o.user = Some("me@contoso.com");
    let d = diagnose(Some(&Failure::Reply { stage: Stage::Auth, reply: Reply::from_lines(&["535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."]).unwrap() }), &o);
    assert_eq!(d.code, "auth.disabled-by-provider");
    assert!(d.fix.contains("does not get around"), "{}", d.fix);
    assert_eq!(
        code(Stage::Auth, "535 5.7.3 Authentication unsuccessful", &o),
        "auth.oauth-token-rejected"
    );
}

/// A port that answers a TLS hello with a TLS alert speaks TLS: after a plain client
/// waited in vain for a greeting, the verdict is "this port expects TLS first", never
/// "retry with a longer timeout" (issue 11: alert versus silence).
#[tokio::test]
async fn a_tls_alert_is_not_silence() {
    // The second connection answers the ClientHello with a fatal handshake_failure.
    let server = FixtureServer::start(&[
        "~ 2500ms",
        "* read\nS!: \\x15\\x03\\x03\\x00\\x02\\x02\\x28\n~ 300ms",
    ])
    .await;
    let mut config = Config::new("localhost");
    config.port = Some(server.addr.port());
    config.connect_to = Some("127.0.0.1".parse().unwrap());
    config.tls = TlsChoice::Starttls;
    config.timeout = Duration::from_secs(1);
    let r = check(config).await.unwrap();
    assert_eq!(
        r.diagnosis.code,
        "tls.starttls-on-implicit-port",
        "{}",
        r.render(smtprobe::report::Style::plain())
    );
    let text = format!(
        "{} {} {}",
        r.diagnosis.summary,
        r.diagnosis.fix,
        r.diagnosis.hints.join(" ")
    );
    assert!(!text.contains("longer"), "{text}");
}

/// The December 2026 facts reach the user: per provider, the fix names the fact the
/// user needs (issue 11 item 3), and an on-premises Exchange gets no tenant advice.
#[test]
fn provider_fixes_state_the_facts() {
    use smtprobe::diagnosis::{diagnose, Context};
    use smtprobe::failure::Failure;
    use smtprobe::protocol::Reply;
    use smtprobe::TlsMode;
    let run = |host: &str, user: &str, banner: Option<&str>, stage: Stage, line: &str| {
        let mut ctx = Context::new(host, 587, TlsMode::Starttls);
        ctx.user = Some(user);
        ctx.banner = banner;
        let reply = Reply::from_lines(&[line]).unwrap();
        diagnose(Some(&Failure::Reply { stage, reply }), &ctx)
    };
    let bad = "535 5.7.8 Authentication credentials invalid";
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (
            "smtp.gmail.com",
            "me@gmail.com",
            bad,
            &[
                "30 May 2022",
                "14 March 2025",
                "no administrator can turn password sign-in back on",
            ],
        ),
        (
            "smtp-relay.gmail.com",
            "me@corp.example",
            "535 5.7.8 Invalid credentials for relay [203.0.113.7]",
            &["Admin console", "SMTP relay service", "not the issue"],
        ),
        (
            "smtppro.zoho.eu",
            "me@corp.example",
            bad,
            &[
                "smtppro.zoho.* is only for paid organisation accounts",
                "smtp.zoho.eu",
            ],
        ),
        (
            "email-smtp.eu-west-1.amazonaws.com",
            "AKIAEXAMPLE",
            bad,
            &["one AWS region", "not your IAM access key"],
        ),
        (
            "smtp.sendgrid.net",
            "me@corp.example",
            bad,
            &["literal string apikey", "trailing newline"],
        ),
        (
            "smtp.eu.mailgun.org",
            "postmaster@mg.example",
            bad,
            &["one sending domain", "smtp.eu.mailgun.org for EU domains"],
        ),
        (
            "smtp-relay.brevo.com",
            "me@corp.example",
            bad,
            &["SMTP key", "not an API key"],
        ),
        (
            "smtp.fastmail.com",
            "me@fastmail.com",
            bad,
            &[
                "never accepts the account password",
                "Basic plans have no SMTP",
            ],
        ),
        ("mail.gmx.net", "me@gmx.net", bad, &["allowed once"]),
        ("smtp.web.de", "me@web.de", bad, &["allowed once"]),
        (
            "smtp.mail.me.com",
            "me@icloud.com",
            bad,
            &[
                "app-specific password",
                "revokes every app-specific password",
            ],
        ),
        (
            "smtp.aol.com",
            "me@aol.com",
            "535 5.7.0 (#AUTH005) Too many bad auth attempts.",
            &["app password", "first try"],
        ),
    ];
    for (host, user, line, needles) in cases {
        let d = run(host, user, None, Stage::Auth, line);
        for n in *needles {
            assert!(d.fix.contains(n), "{host}: no {n:?} in {}", d.fix);
        }
    }
    let d = run(
        "smtp.gmail.com",
        "me@gmail.com",
        None,
        Stage::Data,
        "550 5.4.5 Daily user sending limit exceeded.",
    );
    assert!(
        d.fix.contains("2,000 messages a day") && d.fix.contains("100 recipients per message"),
        "{}",
        d.fix
    );
    // On-premises Exchange: same banner words as Microsoft 365, no tenant advice.
    let onprem =
        "EXCH01.corp.example Microsoft ESMTP MAIL Service ready at Tue, 1 Dec 2026 09:00:00 +0100";
    let d = run(
        "mail.corp.example",
        "me@corp.example",
        Some(onprem),
        Stage::Auth,
        "535 5.7.3 Authentication unsuccessful",
    );
    assert_eq!(d.provider, None);
    assert!(
        !d.fix.contains("Set-CASMailbox") && !d.fix.contains("December 2026"),
        "{}",
        d.fix
    );
    assert!(
        d.hints
            .iter()
            .any(|h| h.contains("does not make a server Microsoft 365")),
        "{:?}",
        d.hints
    );
}

/// The CLI glue: `providers` lists every provider, `explain PROVIDER` shows sources and
/// dates, and the CLI (only the CLI) adds flag names to the library's setting names.
#[tokio::test]
async fn cli_lists_providers_and_adds_flags_when_it_renders() {
    let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let o = smtprobe(vec!["providers".into()], vec![]).await;
    assert!(o.status.success());
    let list = text(&o);
    for p in smtprobe::diagnosis::providers::all() {
        assert!(list.contains(&p.name) && list.contains(p.host()), "{list}");
    }
    let o = smtprobe(vec!["explain".into(), "office365".into()], vec![]).await;
    assert!(o.status.success());
    let page = text(&o);
    assert!(
        page.contains("end of December 2026")
            && page.contains("Sources:")
            && page.contains("checked 2026-"),
        "{page}"
    );
    let o = smtprobe(
        vec!["explain".into(), "tls.implicit-on-starttls-port".into()],
        vec![],
    )
    .await;
    let page = text(&o);
    assert!(
        page.contains("the TLS mode STARTTLS (--tls starttls)"),
        "{page}"
    );
    // A live check: the refused port's fix names the port and TLS mode flags.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = smtprobe(
        vec![
            "check".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--timeout".into(),
            "2".into(),
        ],
        vec![],
    )
    .await;
    let out = text(&o);
    assert!(
        out.contains("connect.refused") && out.contains("nothing listens"),
        "{out}"
    );
    // The library's own JSON keeps setting names (no flags) for programs.
    let o = smtprobe(
        vec![
            "check".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--timeout".into(),
            "2".into(),
            "--json".into(),
        ],
        vec![],
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["diagnosis"]["code"], "connect.refused", "{v}");
}
