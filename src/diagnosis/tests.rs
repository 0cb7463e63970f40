//! Behaviour a user relies on: real reply texts in, the right code and fix out.

use super::*;
use crate::failure::{CertSummary, ConnectAttempt, ConnectErrorKind, DnsErrorKind, TlsFailure};
use crate::protocol::ReplyError;
use crate::secret::Secret;

const GMAIL_BANNER: &str = "smtp.gmail.com ESMTP t66sm6271302pjb.45 - gsmtp";

fn gmail() -> Context<'static> {
    let mut c = Context::new("smtp.gmail.com", 587, TlsMode::Starttls);
    c.banner = Some(GMAIL_BANNER);
    c.user = Some("you@gmail.com");
    c
}

fn reply(lines: &[&str]) -> Reply {
    Reply::from_lines(lines).expect("test reply is valid")
}

fn at(stage: Stage, lines: &[&str]) -> Failure {
    Failure::Reply {
        stage,
        reply: reply(lines),
    }
}

fn diagnose_at(stage: Stage, lines: &[&str], ctx: &Context) -> Diagnosis {
    diagnose(Some(&at(stage, lines)), ctx)
}

fn code_of(stage: Stage, lines: &[&str], ctx: &Context) -> Code {
    diagnose_at(stage, lines, ctx).code
}

/// Each `(stage, reply lines, code)`: the reply at that stage gets that code.
fn expect_codes(ctx: &Context, cases: &[(Stage, &[&str], &str)]) {
    for (stage, lines, code) in cases {
        assert_eq!(code_of(*stage, lines, ctx), *code, "{stage}: {lines:?}");
    }
}

#[test]
fn ok_says_what_was_verified() {
    let d = diagnose(None, &gmail());
    assert_eq!(d.code, "ok");
    assert!(
        d.summary.contains("logged in as you@gmail.com"),
        "{}",
        d.summary
    );
    assert_eq!(d.provider, Some("gmail"));
    let mut c = gmail();
    c.user = None;
    let d = diagnose(None, &c);
    assert!(
        d.summary.contains("authentication was not tested"),
        "{}",
        d.summary
    );
    c.sent_message = true;
    assert!(diagnose(None, &c)
        .summary
        .contains("accepted the test message"));
}

#[test]
fn gmail_bad_credentials_in_both_wordings() {
    let new = [
        "535-5.7.8 Username and Password not accepted. For more information, go to",
        "535 5.7.8  https://support.google.com/mail/?p=BadCredentials af79cd13be357-794f3061475sm18893085a.74 - gsmtp",
    ];
    let old = [
        "535-5.7.8 Username and Password not accepted. Learn more at",
        "535 5.7.8 https://support.google.com/mail/?p=BadCredentials z8sm1 - gsmtp",
    ];
    for lines in [&new[..], &old[..]] {
        let d = diagnose(Some(&at(Stage::Auth, lines)), &gmail());
        assert_eq!(d.code, "auth.bad-credentials");
        assert!(d.fix.contains("app password"), "{}", d.fix);
        assert!(
            d.fix.contains("myaccount.google.com/apppasswords"),
            "{}",
            d.fix
        );
        assert!(d.summary.contains("535 5.7.8"), "{}", d.summary);
        let ev = d.evidence.unwrap();
        assert!(
            ev.contains("535-5.7.8 Username") && ev.contains("BadCredentials"),
            "{ev}"
        );
    }
}

#[test]
fn postfix_and_exim_without_enhanced_codes() {
    let c = Context::new("mail.example.org", 587, TlsMode::Starttls);
    for lines in [
        &["535 5.7.8 Error: authentication failed: authentication failure"][..],
        &["535 Authentication failed"],
        &["535 Incorrect authentication data"],
        &["535 5.7.3 Authentication unsuccessful"],
    ] {
        let d = diagnose(Some(&at(Stage::Auth, lines)), &c);
        assert_eq!(d.code, "auth.bad-credentials", "{lines:?}");
        assert_eq!(d.provider, None);
        assert!(!d.fix.contains("Gmail"), "generic fix for a generic server");
    }
}

#[test]
fn gmail_auth_variants() {
    let g = gmail();
    assert_eq!(
        code_of(Stage::Auth, &[
            "534-5.7.9 Application-specific password required. Learn more at",
            "534 5.7.9 https://support.google.com/mail/?p=InvalidSecondFactor z8-20020a170902ccc800b0016363b15acasm10419980ple.112 - gsmtp",
        ], &g),
        "auth.app-password-required"
    );
    assert_eq!(
        code_of(
            Stage::Auth,
            &[
                "534-5.7.14 <https://accounts.google.com/signin/continue?sarp=1&scc=1&plt=AKgnsbv_",
                "534-5.7.14 zR7mnH8igWdTeU9EPAHvZ_Yl...",
                "534-5.7.14 krt1RPvYF4ql8j3Ty5bkxix30Z7ZI> Please log in via your web browser and",
                "534-5.7.14 then try again.",
                "534-5.7.14 Learn more at",
                "534 5.7.14 https://support.google.com/mail/answer/78754 y6sm6163530wrg.48 - gsmtp",
            ],
            &g
        ),
        "auth.web-login-required"
    );
    expect_codes(
        &g,
        &[
        (Stage::Auth, &["454 4.7.0 Too many login attempts, please try again later. e13sm15101671pgf.48 - gsmtp"], "auth.too-many-attempts"),
        (Stage::Auth, &["454 4.7.0 Temporary authentication failure"], "auth.temporary-failure"),
        (Stage::Auth, &["451 4.3.0 backend down"], "auth.temporary-failure"),
        ],
    );
    let d = diagnose_at(
        Stage::Auth,
        &["530 5.7.0 Must issue a STARTTLS command first. c133sm12701941wme.12 - gsmtp"],
        &g,
    );
    assert_eq!(d.code, "auth.requires-tls");
    assert!(
        d.fix.contains("STARTTLS") && d.fix.contains("465"),
        "{}",
        d.fix
    );
}

#[test]
fn other_providers_auth_replies() {
    let mut o = Context::new("smtp.office365.com", 587, TlsMode::Starttls);
    o.user = Some("me@contoso.com");
    let d = diagnose_at(Stage::Auth, &["535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [SN4PR0601CA0012.namprd06.prod.outlook.com]"], &o);
    assert_eq!(d.code, "auth.disabled-by-provider");
    assert_eq!(d.provider, Some("office365"));
    assert!(d.fix.contains("Set-CASMailbox"), "{}", d.fix);
    // Microsoft's wording without the enhanced code still matches the stable word.
    assert_eq!(
        code_of(Stage::Auth, &["535 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox."], &o),
        "auth.disabled-by-provider"
    );
    let y = Context::new("smtp.mail.yahoo.com", 465, TlsMode::Implicit);
    assert_eq!(
        code_of(
            Stage::Auth,
            &["535 5.7.0 (#AUTH005) Too many bad auth attempts."],
            &y
        ),
        // Issue 11: Yahoo sends #AUTH005 on the first try with the account password;
        // the fix is an app password, not waiting (this assertion pinned that bug).
        "auth.app-password-required"
    );
    expect_codes(
        &y,
        &[
            (
                Stage::Auth,
                &["432 4.7.12 A password transition is needed"],
                "auth.web-login-required",
            ),
            (
                Stage::Auth,
                &["538 5.7.11 Encryption required for requested authentication mechanism"],
                "auth.requires-tls",
            ),
            (
                Stage::Auth,
                &["504 5.5.4 Unrecognized authentication type"],
                "auth.mechanism-unsupported",
            ),
            (
                Stage::Auth,
                &["534 5.7.9 Authentication mechanism is too weak"],
                "auth.mechanism-unsupported",
            ),
            (
                Stage::Auth,
                &["503 5.5.1 Error: already authenticated"],
                "auth.protocol-violation",
            ),
            (
                Stage::Auth,
                &["502 5.5.2 Error: command not recognized"],
                "auth.not-offered",
            ),
            (
                Stage::Auth,
                &["501 5.5.2 Cannot decode response"],
                "auth.rejected",
            ),
        ],
    );
    assert_eq!(
        code_of(Stage::Auth, &["525 5.7.13 User account disabled"], &y),
        // Issue 11: a disabled account is not SMTP AUTH switched off (pinned that bug).
        "auth.account-disabled"
    );
}

#[test]
fn oauth_token_rejected_from_mechanism_or_transcript() {
    let lines = [
        "535-5.7.8 Username and Password not accepted. For more information, go to",
        "535 5.7.8  https://support.google.com/mail/?p=BadCredentials x - gsmtp",
    ];
    let mut c = gmail();
    c.mechanism = Some("XOAUTH2");
    let d = diagnose(Some(&at(Stage::Auth, &lines)), &c);
    assert_eq!(d.code, "auth.oauth-token-rejected");
    assert!(d.fix.contains("mail.google.com"), "{}", d.fix);

    let transcript = [Entry {
        ms: 1.0,
        dir: Direction::Server,
        tls: true,
        stage: Stage::Auth,
        text: "334 eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==".into(),
    }];
    let mut c = gmail();
    c.transcript = &transcript;
    let d = diagnose(Some(&at(Stage::Auth, &lines)), &c);
    assert_eq!(d.code, "auth.oauth-token-rejected");
    assert!(
        d.summary.contains("status 400") && d.summary.contains("https://mail.google.com/"),
        "{}",
        d.summary
    );

    // The session may stop at the error challenge itself.
    let f = Failure::AuthProtocol {
        reply: reply(&["334 eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ=="]),
        reason: "error challenge",
    };
    assert_eq!(
        diagnose(Some(&f), &gmail()).code,
        "auth.oauth-token-rejected"
    );
    let challenge = at(Stage::Auth, &["334 eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ=="]);
    assert_eq!(
        diagnose(Some(&challenge), &gmail()).code,
        "auth.oauth-token-rejected"
    );
    let f = Failure::AuthProtocol {
        reply: reply(&["235 2.7.0 Accepted"]),
        reason: "success before credentials",
    };
    let d = diagnose(Some(&f), &gmail());
    assert_eq!(d.code, "auth.protocol-violation");
    assert!(d.summary.contains("success before credentials"));
}

#[test]
fn server_unavailable_at_any_stage() {
    // Stage::ALL[3..10] is greeting through data: every stage with a server reply.
    for stage in &Stage::ALL[3..10] {
        let stage = *stage;
        let d = diagnose_at(
            stage,
            &["421 4.7.0 Try again later, closing connection. (MAIL) g4sm240722pgs.42 - gsmtp"],
            &gmail(),
        );
        assert_eq!(d.code, "server.unavailable", "{stage}");
        assert!(
            d.fix.contains("EHLO"),
            "Gmail fix names the EHLO cause: {}",
            d.fix
        );
    }
    let c = Context::new("mail.example.org", 587, TlsMode::Starttls);
    assert_eq!(
        code_of(Stage::Mail, &["421 Service not available"], &c),
        "server.unavailable"
    );
}

#[test]
fn sending_failures() {
    let g = gmail();
    assert_eq!(
        code_of(Stage::Data, &[
            "550-5.4.5 Daily user sending limit exceeded. For more information on Gmail",
            "550-5.4.5 sending limits go to",
            "550 5.4.5  https://support.google.com/a/answer/166852 d2e1a72fcca58-76e7d551493sm9728466b3a.112 - gsmtp",
        ], &g),
        "send.quota-exceeded"
    );
    expect_codes(
        &g,
        &[
            (
                Stage::Rcpt,
                &["452 4.5.3 Too many recipients"],
                "send.quota-exceeded",
            ),
            (
                Stage::Mail,
                &["552 5.3.4 Message size exceeds fixed maximum message size"],
                "send.message-too-large",
            ),
            (
                Stage::Mail,
                &["552 5.2.3 Your message exceeded Google's message size limits."],
                "send.message-too-large",
            ),
            (
                Stage::Rcpt,
                &["555 5.5.2 Syntax error. n68sm3960564vkd.0 - gsmtp"],
                "send.syntax-error",
            ),
            (
                Stage::Mail,
                &["501 5.1.7 Bad sender address syntax"],
                "send.syntax-error",
            ),
        ],
    );
    let d = diagnose_at(Stage::Mail, &[
            "530-5.7.0 Authentication Required. Learn more at",
            "530 5.7.0  https://support.google.com/mail/?p=WantAuthError y18-20020a92d0d2000000b002f685e47b47sm428291ila.54 - gsmtp",
        ], &g);
    assert_eq!(d.code, "send.auth-required");
    assert_eq!(
        code_of(
            Stage::Mail,
            &["530 5.7.0 Must issue a STARTTLS command first."],
            &g
        ),
        "auth.requires-tls"
    );
    let c = Context::new("mail.example.org", 587, TlsMode::Starttls);
    expect_codes(
        &c,
        &[
        (Stage::Mail, &["553 5.7.1 <x@y.org>: Sender address rejected: not owned by user me@example.org"], "send.sender-rejected"),
        (Stage::Rcpt, &["550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in virtual mailbox table"], "send.recipient-rejected"),
        (Stage::Rcpt, &["552 5.2.2 Mailbox full"], "send.recipient-rejected"),
        ],
    );
    let d = diagnose_at(
        Stage::Rcpt,
        &["554 5.7.1 <x@other.org>: Relay access denied"],
        &c,
    );
    assert_eq!(d.code, "send.sender-rejected");
    // Library texts name settings, not flags (issue 11); the CLI adds "--user".
    assert!(
        d.hints.iter().any(|h| h.contains("user name")),
        "{:?}",
        d.hints
    );
    expect_codes(
        &c,
        &[
            (
                Stage::Data,
                &["550 5.7.1 Message rejected as spam"],
                "send.rejected",
            ),
            (
                Stage::Data,
                &["451 4.3.0 Temporary local problem"],
                "send.rejected",
            ),
        ],
    );
    assert_eq!(
        code_of(
            Stage::Data,
            &["550 5.7.60 SMTP; Client does not have permissions to send as this sender"],
            &c
        ),
        "send.sender-rejected"
    );
    assert_eq!(
        code_of(
            Stage::Mail,
            &["530 5.7.57 Client not authenticated to send mail"],
            &c
        ),
        "send.auth-required"
    );
}

#[test]
fn early_stages_and_unexpected_replies() {
    let c = Context::new("mail.example.org", 587, TlsMode::Starttls);
    expect_codes(
        &c,
        &[
            (
                Stage::Greeting,
                &["554 5.7.1 Client host blocked using zen.spamhaus.org"],
                "greeting.rejected",
            ),
            (
                Stage::Ehlo,
                &["501 5.5.4 Invalid EHLO/HELO domain"],
                "ehlo.rejected",
            ),
            (
                Stage::Starttls,
                &["454 4.7.0 TLS not available due to temporary reason"],
                "starttls.rejected",
            ),
            (Stage::Data, &["250 OK"], "protocol.unexpected-reply"),
            (Stage::Quit, &["500 what"], "protocol.unexpected-reply"),
            (Stage::Greeting, &["250 hi"], "protocol.unexpected-reply"),
        ],
    );
}

fn attempt(addr: &str, error: Option<ConnectErrorKind>, detail: &str) -> ConnectAttempt {
    ConnectAttempt {
        addr: addr.parse().expect("test address"),
        error,
        detail: detail.into(),
        ms: 10.0,
    }
}

/// A connect failure over several addresses, with the OS error text each kind produces.
fn connect_failure(list: &[(&str, ConnectErrorKind)]) -> Failure {
    let detail = |k| match k {
        ConnectErrorKind::Refused => "Connection refused (os error 111)",
        ConnectErrorKind::Timeout => "timed out",
        ConnectErrorKind::Unreachable => "Network is unreachable (os error 101)",
        ConnectErrorKind::Other => "Permission denied (os error 13)",
    };
    Failure::Connect {
        attempts: list
            .iter()
            .map(|(addr, k)| attempt(addr, Some(*k), detail(*k)))
            .collect(),
    }
}

#[test]
fn connect_is_judged_over_all_attempts() {
    use ConnectErrorKind::*;
    const V6: &str = "[2a00:1450:400c:c07::6c]:587";
    let g = gmail();
    let d = diagnose(
        Some(&connect_failure(&[
            ("142.250.0.108:587", Refused),
            ("142.250.0.109:587", Refused),
        ])),
        &g,
    );
    assert_eq!(d.code, "connect.refused");
    let ev = d.evidence.unwrap_or_default();
    assert!(ev.contains("142.250.0.109:587: Connection refused"), "{ev}");

    let d = diagnose(
        Some(&connect_failure(&[
            ("142.250.0.108:587", Refused),
            ("142.250.0.109:587", Timeout),
        ])),
        &g,
    );
    assert_eq!(d.code, "connect.timeout");
    assert!(
        d.fix.contains("block") && d.fix.contains("465"),
        "{}",
        d.fix
    );

    let d = diagnose(
        Some(&connect_failure(&[
            (V6, Unreachable),
            ("142.250.0.108:587", Timeout),
        ])),
        &g,
    );
    assert_eq!(d.code, "connect.timeout");
    assert!(d.summary.contains("IPv4"), "{}", d.summary);
    // Library texts name the setting; the CLI adds "-4" (issue 11).
    assert!(
        d.hints.iter().any(|h| h.contains("the IPv4-only setting")),
        "{:?}",
        d.hints
    );

    let c465 = Context::new("smtp.gmail.com", 465, TlsMode::Implicit);
    let d = diagnose(
        Some(&connect_failure(&[
            ("[2a00:1450:400c:c07::6c]:465", Unreachable),
            ("142.250.0.108:465", Refused),
        ])),
        &c465,
    );
    assert_eq!(d.code, "connect.refused");
    assert!(d.fix.contains("587"), "{}", d.fix);

    assert_eq!(
        diagnose(Some(&connect_failure(&[(V6, Unreachable)])), &g).code,
        "connect.unreachable"
    );
    assert_eq!(
        diagnose(Some(&connect_failure(&[])), &g).code,
        "connect.unreachable"
    );
    assert_eq!(
        diagnose(Some(&connect_failure(&[("192.0.2.1:587", Other)])), &g).code,
        "connect.unreachable"
    );

    let c25 = Context::new("mail.example.org", 25, TlsMode::None);
    let d = diagnose(Some(&connect_failure(&[("192.0.2.1:25", Timeout)])), &c25);
    assert!(d.fix.contains("587"), "{}", d.fix);
    assert!(
        d.hints.iter().any(|h| h.contains("Port 25")),
        "{:?}",
        d.hints
    );
}

#[test]
fn clear_text_after_the_starttls_220_is_injection_not_a_port_mixup() {
    let mut c = gmail();
    c.mode = TlsMode::Starttls;
    let f = Failure::Tls(TlsFailure {
        kind: TlsFailureKind::ClearTextReply {
            first_line: "235 2.7.0 Authentication successful".into(),
        },
        certificate: None,
        after_starttls: true,
    });
    let d = diagnose(Some(&f), &c);
    assert_eq!(d.code, "starttls.injection");
    assert!(!d.summary.contains("not implicit TLS"), "{}", d.summary);
    assert_eq!(
        d.evidence.as_deref(),
        Some("235 2.7.0 Authentication successful")
    );
}

#[test]
fn tls_mode_mixups() {
    let g = gmail();
    let f = Failure::Tls(TlsFailure {
        kind: TlsFailureKind::ClearTextReply {
            first_line: "220 smtp.gmail.com ESMTP t66sm6271302pjb.45 - gsmtp".into(),
        },
        certificate: None,
        after_starttls: false,
    });
    let mut c = g;
    c.mode = TlsMode::Implicit;
    let d = diagnose(Some(&f), &c);
    assert_eq!(d.code, "tls.implicit-on-starttls-port");
    assert!(
        d.summary.contains("Port 587 speaks STARTTLS") && d.summary.contains("220 smtp.gmail.com"),
        "{}",
        d.summary
    );
    let mut c = Context::new("smtp.gmail.com", 465, TlsMode::Starttls);
    c.banner = None;
    let d = diagnose(Some(&Failure::TlsExpectedByServer), &c);
    assert_eq!(d.code, "tls.starttls-on-implicit-port");
    assert!(
        d.summary
            .contains("Port 465 expects TLS from the first byte"),
        "{}",
        d.summary
    );
}

fn cert(issuer: &str, sans: &[&str]) -> CertSummary {
    CertSummary {
        subject: format!("CN={}", sans.first().copied().unwrap_or("x")),
        issuer: issuer.into(),
        sans: sans.iter().map(|s| s.to_string()).collect(),
        not_before: "2025-01-01T00:00:00Z".into(),
        not_after: "2025-04-01T00:00:00Z".into(),
    }
}

fn tls_failure(kind: TlsFailureKind, certificate: Option<CertSummary>) -> Failure {
    Failure::Tls(TlsFailure {
        kind,
        certificate,
        after_starttls: true,
    })
}

#[test]
fn certificates() {
    let c = Context::new("mail.example.org", 587, TlsMode::Starttls);
    let d = diagnose(
        Some(&tls_failure(
            TlsFailureKind::UntrustedIssuer,
            Some(cert(
                "CN=Example Private CA, O=Example",
                &["mail.example.org"],
            )),
        )),
        &c,
    );
    assert_eq!(d.code, "tls.untrusted-certificate");
    assert!(d.summary.contains("Example Private CA"), "{}", d.summary);
    let d = diagnose(
        Some(&tls_failure(
            TlsFailureKind::Expired,
            Some(cert("CN=R11, O=Let's Encrypt", &["mail.example.org"])),
        )),
        &c,
    );
    assert_eq!(d.code, "tls.expired-certificate");
    assert!(d.summary.contains("2025-04-01"), "{}", d.summary);
    let d = diagnose(Some(&tls_failure(TlsFailureKind::NotYetValid, None)), &c);
    assert_eq!(d.code, "tls.expired-certificate");
    assert!(d.summary.contains("clock"));
    let d = diagnose(
        Some(&tls_failure(
            TlsFailureKind::NameMismatch,
            Some(cert("CN=R11", &["*.hosting.example", "hosting.example"])),
        )),
        &c,
    );
    assert_eq!(d.code, "tls.hostname-mismatch");
    assert!(d.summary.contains("*.hosting.example"), "{}", d.summary);
    assert!(!d.summary.contains("interception"));
    let d = diagnose(
        Some(&tls_failure(
            TlsFailureKind::Handshake {
                detail: "received fatal alert: HandshakeFailure".into(),
            },
            None,
        )),
        &c,
    );
    assert_eq!(d.code, "tls.handshake-failed");
    assert!(d.summary.contains("HandshakeFailure"));
    assert!(d.evidence.unwrap_or_default().contains("HandshakeFailure"));
    assert_eq!(
        diagnose(
            Some(&tls_failure(TlsFailureKind::ClosedDuringHandshake, None)),
            &c
        )
        .code,
        "tls.handshake-failed"
    );
    assert_eq!(
        diagnose(
            Some(&tls_failure(
                TlsFailureKind::BadCertificate {
                    detail: "revoked".into()
                },
                None
            )),
            &c
        )
        .code,
        "tls.untrusted-certificate"
    );
}

#[test]
fn interception_on_a_provider_host() {
    let mut c = gmail();
    c.banner =
        Some("server.hostingprovider.net ESMTP Exim 4.96 #2 Mon, 01 Jan 2026 10:00:00 +0000");
    let d = diagnose(
        Some(&tls_failure(
            TlsFailureKind::NameMismatch,
            Some(cert("CN=R11, O=Let's Encrypt", &["*.hostingprovider.net"])),
        )),
        &c,
    );
    assert_eq!(d.code, "tls.hostname-mismatch");
    assert!(d.summary.contains("interception"), "{}", d.summary);
    assert!(d.hints[0].contains("redirecting port 587"), "{:?}", d.hints);
    // With the hosting provider's Exim refusing the Gmail login.
    let d = diagnose_at(Stage::Auth, &["535 Incorrect authentication data"], &c);
    assert_eq!(d.code, "auth.bad-credentials");
    assert!(
        d.hints[0].contains("does not look like Gmail"),
        "{:?}",
        d.hints
    );
    assert!(d.summary.contains("not Gmail"), "{}", d.summary);
    assert!(
        !d.fix.contains("apppasswords"),
        "Gmail advice for a server that is not Gmail: {}",
        d.fix
    );
    // The fact sheet: a certificate verified for the host proves who answered; a
    // banner alone is no interception (Outlook.com greets from Microsoft 365 hosts).
    let mut verified = c;
    verified.tls_verified = true;
    let d = diagnose_at(
        Stage::Auth,
        &["535 Incorrect authentication data"],
        &verified,
    );
    assert!(
        !d.hints.iter().any(|h| h.contains("does not look like")),
        "{:?}",
        d.hints
    );
    assert!(!d.summary.contains("not Gmail"), "{}", d.summary);
    // Antivirus re-signing with the right name.
    let d = diagnose(
        Some(&tls_failure(
            TlsFailureKind::UntrustedIssuer,
            Some(cert("CN=Avast Mail Shield Root", &["smtp.gmail.com"])),
        )),
        &gmail(),
    );
    assert!(
        d.summary.contains("Avast") && d.summary.contains("interception"),
        "{}",
        d.summary
    );
    // A genuine Gmail banner raises nothing.
    let d = diagnose_at(Stage::Auth, &["535 5.7.8 x"], &gmail());
    assert!(!d.hints.iter().any(|h| h.contains("does not look like")));
}

#[test]
fn banner_is_escaped_in_hints() {
    let mut c = gmail();
    c.banner = Some("evil.example ESMTP Exim \u{1b}[2J");
    let d = diagnose_at(Stage::Auth, &["535 no"], &c);
    let all = d.hints.join("\n");
    assert!(all.contains("Exim") && !all.contains('\u{1b}'), "{all}");
}

#[test]
fn dns_suggestions() {
    for host in ["smtp.gmial.com", "smtp.gmail.co", "smpt.gmail.com"] {
        let c = Context::new(host, 587, TlsMode::Starttls);
        let d = diagnose(
            Some(&Failure::Dns {
                kind: DnsErrorKind::NoSuchHost,
                detail: "Name or service not known".into(),
            }),
            &c,
        );
        assert_eq!(d.code, "dns.no-such-host");
        assert!(
            d.fix.contains("Did you mean smtp.gmail.com?"),
            "{host}: {}",
            d.fix
        );
    }
    let c = Context::new("gmail.com", 587, TlsMode::Starttls);
    let d = diagnose(
        Some(&Failure::Dns {
            kind: DnsErrorKind::NoSuchHost,
            detail: String::new(),
        }),
        &c,
    );
    assert!(d.fix.contains("smtp.gmail.com"), "{}", d.fix);
    // gmail.com resolves in reality; a timeout there also names the submission host.
    let t = Failure::Connect {
        attempts: vec![attempt(
            "142.250.0.17:587",
            Some(ConnectErrorKind::Timeout),
            "timed out",
        )],
    };
    let d = diagnose(Some(&t), &c);
    assert!(
        d.hints
            .iter()
            .any(|h| h.contains("mail domain") && h.contains("smtp.gmail.com")),
        "{:?}",
        d.hints
    );
    let c = Context::new("smtp.example.org", 587, TlsMode::Starttls);
    let d = diagnose(
        Some(&Failure::Dns {
            kind: DnsErrorKind::LookupFailed,
            detail: "Temporary failure in name resolution".into(),
        }),
        &c,
    );
    assert_eq!(d.code, "dns.lookup-failed");
    assert_eq!(
        d.evidence.as_deref(),
        Some("Temporary failure in name resolution")
    );
}

#[test]
fn credential_hints_never_reveal_the_password() {
    let pw = Secret::new("Hunter2-Sentinel!\n");
    let shape = CredentialShape::inspect(&pw);
    let mut c = gmail();
    c.user = Some("you");
    c.credential = Some(&shape);
    let d = diagnose_at(
        Stage::Auth,
        &["535 5.7.8 Username and Password not accepted."],
        &c,
    );
    let all = format!("{d:?} {}", serde_json::to_string(&d).unwrap_or_default());
    assert!(
        !all.contains("Hunter2") && !all.contains("Sentinel"),
        "{all}"
    );
    let hints = d.hints.join("\n");
    assert!(
        hints.contains("does not look like a Gmail / Google Workspace app password"),
        "{hints}"
    );
    assert!(hints.contains("line break"), "{hints}");
    assert!(hints.contains("has no @"), "{hints}");

    let good = CredentialShape::inspect(&Secret::new("abcd efgh ijkl mnop"));
    let mut c = gmail();
    c.credential = Some(&good);
    let d = diagnose_at(
        Stage::Auth,
        &["535 5.7.8 Username and Password not accepted."],
        &c,
    );
    assert!(
        d.hints.iter().any(|h| h.contains("has the form of a")),
        "{:?}",
        d.hints
    );
    assert!(!d.hints.iter().any(|h| h.contains("does not look like")));

    let odd = CredentialShape::inspect(&Secret::new(" pässwörd"));
    let mut c = Context::new("mail.example.org", 587, TlsMode::Starttls);
    c.user = Some("me");
    c.credential = Some(&odd);
    let d = diagnose_at(Stage::Auth, &["535 Authentication failed"], &c);
    let hints = d.hints.join("\n");
    assert!(
        hints.contains("whitespace") && hints.contains("non-ASCII"),
        "{hints}"
    );
    assert!(
        !hints.contains("has no @"),
        "generic servers may use local user names"
    );
}

#[test]
fn other_failure_variants() {
    let c = Context::new("mail.example.org", 587, TlsMode::Starttls);
    let cases: Vec<(Failure, &str)> = vec![
        (
            Failure::Timeout {
                stage: Stage::Greeting,
            },
            "server.timeout",
        ),
        (
            Failure::Closed {
                stage: Stage::Ehlo,
                partial: Some("250-mail".into()),
            },
            "server.closed",
        ),
        (
            Failure::Malformed {
                stage: Stage::Greeting,
                error: ReplyError::Malformed {
                    line: "SSH-2.0-OpenSSH_9.2".into(),
                    reason: "x",
                },
            },
            "protocol.malformed-reply",
        ),
        (Failure::StartTlsNotOffered, "starttls.not-offered"),
        (
            Failure::StartTlsInjection {
                bytes: "250 injected".into(),
            },
            "starttls.injection",
        ),
        (
            Failure::AuthNotOffered {
                tls: true,
                starttls_offered: false,
            },
            "auth.not-offered",
        ),
        (
            Failure::AuthNotOffered {
                tls: false,
                starttls_offered: true,
            },
            "auth.requires-tls",
        ),
        (
            Failure::AuthNotOffered {
                tls: false,
                starttls_offered: false,
            },
            "auth.not-offered",
        ),
        (
            Failure::MechanismUnsupported {
                wanted: Some("CRAM-MD5".into()),
                offered: vec!["PLAIN".into()],
            },
            "auth.mechanism-unsupported",
        ),
        (
            Failure::MechanismUnsupported {
                wanted: None,
                offered: vec![],
            },
            "auth.mechanism-unsupported",
        ),
        (Failure::PlaintextAuthRefused, "auth.plaintext-refused"),
        (
            Failure::Unsolicited {
                stage: Stage::Ehlo,
                bytes: "250 extra".into(),
            },
            "protocol.unexpected-reply",
        ),
    ];
    for (f, code) in cases {
        let d = diagnose(Some(&f), &c);
        assert_eq!(d.code, code, "{f:?}");
        assert!(!d.summary.is_empty() && !d.fix.is_empty());
    }
    let d = diagnose(
        Some(&Failure::Malformed {
            stage: Stage::Greeting,
            error: ReplyError::Malformed {
                line: "SSH-2.0-OpenSSH_9.2".into(),
                reason: "x",
            },
        }),
        &c,
    );
    assert!(d.hints.iter().any(|h| h.contains("SSH")), "{:?}", d.hints);
    let c465 = Context::new("mail.example.org", 465, TlsMode::Starttls);
    let d = diagnose(
        Some(&Failure::Timeout {
            stage: Stage::Greeting,
        }),
        &c465,
    );
    assert!(d.fix.contains("the TLS mode implicit TLS"), "{}", d.fix);
    assert!(
        super::settings::with_cli_flags(&d.fix).contains("--tls implicit"),
        "{}",
        d.fix
    );
}

/// Every code `diagnose` can return is registered, and every registered code except the
/// catch-alls is reachable from some input (exercising each variant above and here).
#[test]
fn every_emitted_code_is_registered_and_every_code_is_emitted() {
    let c = Context::new("mail.example.org", 587, TlsMode::Starttls);
    let mut inputs: Vec<Option<Failure>> = vec![None];
    inputs.push(Some(Failure::Dns {
        kind: DnsErrorKind::NoSuchHost,
        detail: String::new(),
    }));
    inputs.push(Some(Failure::Dns {
        kind: DnsErrorKind::LookupFailed,
        detail: String::new(),
    }));
    for k in [
        ConnectErrorKind::Refused,
        ConnectErrorKind::Timeout,
        ConnectErrorKind::Unreachable,
        ConnectErrorKind::Other,
    ] {
        inputs.push(Some(Failure::Connect {
            attempts: vec![attempt("192.0.2.1:587", Some(k), "x")],
        }));
    }
    for kind in [
        TlsFailureKind::ClearTextReply {
            first_line: "220 x".into(),
        },
        TlsFailureKind::UntrustedIssuer,
        TlsFailureKind::Expired,
        TlsFailureKind::NotYetValid,
        TlsFailureKind::NameMismatch,
        TlsFailureKind::BadCertificate { detail: "x".into() },
        TlsFailureKind::Handshake { detail: "x".into() },
        TlsFailureKind::ClosedDuringHandshake,
        TlsFailureKind::ClientCertificateRequired,
        TlsFailureKind::VersionTooOld {
            offered: Some("TLS 1.0".into()),
        },
        TlsFailureKind::Alert {
            alert: "HandshakeFailure".into(),
        },
    ] {
        inputs.push(Some(tls_failure(kind, None)));
    }
    inputs.push(Some(Failure::Tls(TlsFailure {
        kind: TlsFailureKind::ClearTextReply {
            first_line: "220 x".into(),
        },
        certificate: None,
        after_starttls: false,
    })));
    inputs.push(Some(Failure::TlsExpectedByServer));
    for stage in Stage::ALL {
        inputs.push(Some(Failure::Timeout { stage }));
        inputs.push(Some(Failure::Closed {
            stage,
            partial: None,
        }));
        inputs.push(Some(Failure::Unsolicited {
            stage,
            bytes: String::new(),
        }));
        inputs.push(Some(Failure::Malformed {
            stage,
            error: ReplyError::ReplyTooLarge { lines: 300 },
        }));
        for code in [
            211, 220, 221, 235, 250, 334, 354, 421, 432, 450, 451, 452, 454, 500, 501, 502, 503,
            504, 530, 534, 535, 538, 550, 551, 552, 553, 554, 555,
        ] {
            inputs.push(Some(at(stage, &[&format!("{code} x")])));
        }
    }
    inputs.push(Some(Failure::StartTlsNotOffered));
    inputs.push(Some(Failure::StartTlsInjection {
        bytes: String::new(),
    }));
    inputs.push(Some(Failure::AuthNotOffered {
        tls: false,
        starttls_offered: false,
    }));
    inputs.push(Some(Failure::AuthNotOffered {
        tls: false,
        starttls_offered: true,
    }));
    inputs.push(Some(Failure::OAuthRejected {
        challenge: "{}".into(),
        reply: Reply::from_lines(&["535 5.7.8 no"]).unwrap(),
    }));
    inputs.push(Some(Failure::MechanismUnsupported {
        wanted: None,
        offered: vec![],
    }));
    inputs.push(Some(Failure::PlaintextAuthRefused));
    inputs.push(Some(Failure::AuthProtocol {
        reply: reply(&["235 ok"]),
        reason: "x",
    }));
    inputs.push(Some(at(Stage::Auth, &["534 5.7.14 web browser"])));
    inputs.push(Some(at(Stage::Auth, &["535 5.7.139 x"])));
    inputs.push(Some(at(
        Stage::Auth,
        &["535 5.7.139 SmtpClientAuthentication is disabled"],
    )));
    inputs.push(Some(at(
        Stage::Auth,
        &["550 5.7.30 Basic authentication is not supported for Client Submission."],
    )));
    inputs.push(Some(at(Stage::Auth, &["535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully."])));
    inputs.push(Some(at(
        Stage::Mail,
        &["550 5.1.8 Access denied, bad outbound sender"],
    )));
    inputs.push(Some(at(Stage::Auth, &["535 5.7.13 User account disabled"])));
    inputs.push(Some(at(
        Stage::Data,
        &["554 Message rejected: Email address is not verified."],
    )));
    inputs.push(Some(at(
        Stage::Auth,
        &["454 4.7.0 Too many login attempts"],
    )));
    inputs.push(Some(at(
        Stage::Mail,
        &["550 5.4.5 Daily user sending limit exceeded"],
    )));
    inputs.push(Some(at(Stage::Data, &["550 5.7.1 spam"])));
    // Issue 13: SCRAM, HELO-only, message checks, proxies.
    inputs.push(Some(Failure::ScramServerUnverified {
        error: crate::protocol::sasl::ScramError::SignatureMismatch,
        reply: reply(&["334 dj1BQUFB"]),
    }));
    inputs.push(Some(Failure::NotEsmtp { needed: "AUTH" }));
    inputs.push(Some(Failure::ExtensionNotOffered {
        extension: "SMTPUTF8",
        why: "an address is not ASCII",
    }));
    for kind in [
        crate::proxy::ProxyFailureKind::Unreachable,
        crate::proxy::ProxyFailureKind::AuthFailed,
        crate::proxy::ProxyFailureKind::DestinationRefused,
        crate::proxy::ProxyFailureKind::Protocol,
    ] {
        inputs.push(Some(Failure::Proxy(crate::proxy::ProxyFailure {
            kind,
            proxy: "socks5://127.0.0.1:1080".into(),
            detail: "x".into(),
        })));
    }

    let mut seen = std::collections::BTreeSet::new();
    for f in &inputs {
        let d = diagnose(f.as_ref(), &c);
        assert!(
            codes::lookup(d.code.as_str()).is_some(),
            "{} not registered",
            d.code
        );
        assert!(!d.summary.is_empty() && !d.fix.is_empty(), "{}", d.code);
        // Issue 11: texts name settings; only the CLI adds flags.
        for text in std::iter::once(&d.fix).chain(&d.hints) {
            super::providers::tests::assert_no_flag(text, d.code.as_str());
        }
        seen.insert(d.code);
    }
    let mut ctx_oauth = c;
    ctx_oauth.mechanism = Some("XOAUTH2");
    seen.insert(diagnose_at(Stage::Auth, &["535 5.7.8 no"], &ctx_oauth).code);
    for info in codes::all() {
        assert!(
            seen.contains(&info.code),
            "{} is registered but never emitted",
            info.code
        );
    }
}

#[test]
fn hostile_reply_text_does_not_panic_or_leak_escapes() {
    let c = gmail();
    let weird = [
        "535 \u{1b}[2J\u{7}",
        "535-",
        "535 5.7.",
        "535 9.9.9 x",
        "534 5.7.999999 x",
        "535 \u{fffd}\u{fffd}",
    ];
    for w in weird {
        if let Ok(r) = Reply::from_lines(&[w]) {
            let d = diagnose(
                Some(&Failure::Reply {
                    stage: Stage::Auth,
                    reply: r,
                }),
                &c,
            );
            assert!(!d.evidence.unwrap_or_default().contains('\u{1b}'));
        }
    }
    let r = Reply::from_lines(&[&b"535 \xff\xfe\x1b[31m"[..]]).expect("valid");
    let d = diagnose(
        Some(&Failure::Reply {
            stage: Stage::Auth,
            reply: r,
        }),
        &c,
    );
    assert!(!d.evidence.unwrap_or_default().contains('\u{1b}'));
}

#[test]
fn diagnosis_serialises() {
    let d = diagnose_at(Stage::Auth, &["535 5.7.8 no"], &gmail());
    let json = serde_json::to_value(&d).expect("serialises");
    assert_eq!(json["code"], "auth.bad-credentials");
    assert_eq!(json["provider"], "gmail");
    assert!(json["hints"].is_array());
}
