//! The probe against a real Postfix + Dovecot on loopback, started by
//! `scripts/real-mta.sh up` (which `.ci/run` runs). Without `SMTPROBE_REAL_MTA=1` these
//! tests say they are skipped and pass on a developer's machine; with `CI` set a missing
//! MTA fails them, so CI cannot be green without real-server coverage.

use smtprobe::{check, Config, Report, Secret};
use smtprobe::{AuthChoice, AuthConfig, Credential};
use std::time::Duration;

struct Mta {
    host: String,
    submission: u16,
    submissions: u16,
    smtp: u16,
    ca: Vec<rustls::pki_types::CertificateDer<'static>>,
    user: String,
    password: String,
    mailbox: String,
}

fn mta(test: &str) -> Option<Mta> {
    if std::env::var("SMTPROBE_REAL_MTA").as_deref() != Ok("1") {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: CI is set but no real MTA is up (SMTPROBE_REAL_MTA != 1): \
             .ci/run must start it with scripts/real-mta.sh up"
        );
        eprintln!(
            "{test}: skipped: no real MTA (run `eval \"$(bash scripts/real-mta.sh up)\"` first)"
        );
        return None;
    }
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let port = |k: &str| var(k).parse::<u16>().unwrap();
    Some(Mta {
        host: var("SMTPROBE_MTA_HOST"),
        submission: port("SMTPROBE_MTA_SUBMISSION_PORT"),
        submissions: port("SMTPROBE_MTA_SUBMISSIONS_PORT"),
        smtp: port("SMTPROBE_MTA_SMTP_PORT"),
        ca: smtprobe::load_ca_file(std::path::Path::new(&var("SMTPROBE_MTA_CA"))).unwrap(),
        user: var("SMTPROBE_MTA_USER"),
        password: var("SMTPROBE_MTA_PASSWORD"),
        mailbox: var("SMTPROBE_MTA_MAILBOX"),
    })
}

impl Mta {
    fn config(&self, port: u16, tls: smtprobe::TlsChoice) -> Config {
        let mut c = Config::new(self.host.clone());
        c.port = Some(port);
        c.tls = tls;
        c.connect_to = Some("127.0.0.1".parse().unwrap());
        c.extra_roots = self.ca.clone();
        c.timeout = Duration::from_secs(5);
        c.helo = Some("client.test".into());
        c
    }

    fn login(&self, c: &mut Config, password: &str, choice: AuthChoice) {
        c.auth = Some(AuthConfig {
            user: self.user.clone(),
            credential: Credential::Password {
                secret: Secret::new(password),
                choice,
            },
        });
    }
}

fn code(r: &Report) -> &str {
    r.diagnosis.code.as_str()
}

use smtprobe::TlsChoice;

#[tokio::test]
async fn success_on_587_and_465_with_plain_and_login() {
    let Some(m) = mta("success_on_587_and_465_with_plain_and_login") else {
        return;
    };
    for (port, tls) in [
        (m.submission, TlsChoice::Starttls),
        (m.submissions, TlsChoice::Implicit),
    ] {
        for choice in [AuthChoice::Plain, AuthChoice::Login] {
            let mut c = m.config(port, tls);
            m.login(&mut c, &m.password, choice);
            let r = check(c).await.unwrap();
            assert_eq!(code(&r), "ok", "{port} {choice:?}: {:?}", r.failure);
            let mech = r.settings.as_ref().and_then(|s| s.mechanism.clone());
            let want = if choice == AuthChoice::Plain {
                "PLAIN"
            } else {
                "LOGIN"
            };
            assert_eq!(mech.as_deref(), Some(want));
            assert!(r.tls.as_ref().unwrap().verified);
        }
    }
}

#[tokio::test]
async fn wrong_password_is_bad_credentials() {
    let Some(m) = mta("wrong_password_is_bad_credentials") else {
        return;
    };
    let mut c = m.config(m.submission, TlsChoice::Starttls);
    m.login(&mut c, "definitely-wrong", AuthChoice::Auto);
    let r = check(c).await.unwrap();
    assert_eq!(code(&r), "auth.bad-credentials", "{:?}", r.failure);
    assert_eq!(r.reply.as_ref().unwrap().code(), 535);
}

#[tokio::test]
async fn port_25_without_tls_or_auth() {
    let Some(m) = mta("port_25_without_tls_or_auth") else {
        return;
    };
    // STARTTLS demanded: port 25 here offers none.
    let mut c = m.config(m.smtp, TlsChoice::Starttls);
    m.login(&mut c, &m.password, AuthChoice::Auto);
    let r = check(c).await.unwrap();
    assert_eq!(code(&r), "starttls.not-offered");
    // Plain with credentials: refused before anything is sent.
    let mut c = m.config(m.smtp, TlsChoice::None);
    m.login(&mut c, &m.password, AuthChoice::Auto);
    let r = check(c).await.unwrap();
    assert_eq!(code(&r), "auth.plaintext-refused");
    // Plain, with the plaintext override: the server offers no AUTH at all.
    let mut c = m.config(m.smtp, TlsChoice::None);
    m.login(&mut c, &m.password, AuthChoice::Auto);
    c.allow_plaintext_auth = true;
    let r = check(c).await.unwrap();
    assert_eq!(code(&r), "auth.not-offered");
}

#[tokio::test]
async fn full_send_lands_in_the_mailbox_and_unknown_recipient_is_rejected() {
    let Some(m) = mta("full_send_lands_in_the_mailbox") else {
        return;
    };
    let mut c = m.config(m.submission, TlsChoice::Starttls);
    m.login(&mut c, &m.password, AuthChoice::Auto);
    c.mail = Some(smtprobe::MailTarget {
        from: m.user.clone(),
        to: vec![m.user.clone()],
    });
    let count = |text: &str| text.matches("Subject: smtprobe test message").count();
    let before = count(&std::fs::read_to_string(&m.mailbox).unwrap_or_default());
    let r = check(c).await.unwrap();
    assert_eq!(code(&r), "ok", "{:?}", r.failure);
    let mut found = false;
    for _ in 0..50 {
        if count(&std::fs::read_to_string(&m.mailbox).unwrap_or_default()) > before {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found, "message not delivered to {}", m.mailbox);

    let mut c = m.config(m.submission, TlsChoice::Starttls);
    m.login(&mut c, &m.password, AuthChoice::Auto);
    c.mail = Some(smtprobe::MailTarget {
        from: m.user.clone(),
        to: vec!["nobody@localhost.test".into()],
    });
    let r = check(c).await.unwrap();
    assert_eq!(code(&r), "send.recipient-rejected", "{:?}", r.failure);
    assert_eq!(r.failed_stage, Some(smtprobe::Stage::Rcpt));
}

#[tokio::test]
async fn wrong_tls_mode_both_ways() {
    let Some(m) = mta("wrong_tls_mode_both_ways") else {
        return;
    };
    let r = check(m.config(m.submission, TlsChoice::Implicit))
        .await
        .unwrap();
    assert_eq!(code(&r), "tls.implicit-on-starttls-port");
    let mut c = m.config(m.submissions, TlsChoice::Starttls);
    c.timeout = Duration::from_secs(2);
    let r = check(c).await.unwrap();
    assert_eq!(code(&r), "tls.starttls-on-implicit-port");
    // Auto mode finds the working mode.
    let mut c = m.config(m.submissions, TlsChoice::Auto);
    c.timeout = Duration::from_secs(2);
    c.port = Some(m.submissions);
    let r = check(c).await.unwrap();
    assert_eq!(code(&r), "ok");
    // The abandoned STARTTLS attempt is a note, not a failed stage.
    assert!(r.stages.iter().all(|s| s.ok), "{:?}", r.stages);
}

#[tokio::test]
async fn certificate_not_trusted_without_ca_file() {
    let Some(m) = mta("certificate_not_trusted_without_ca_file") else {
        return;
    };
    let mut c = m.config(m.submission, TlsChoice::Starttls);
    c.extra_roots.clear();
    let r = check(c).await.unwrap();
    assert_eq!(code(&r), "tls.untrusted-certificate");
}

/// What swaks (a peer nobody here wrote) concluded: success, and the code of the reply
/// that failed it (`<** 535 …` lines).
fn swaks(args: &[String]) -> (bool, Option<u16>) {
    let out = std::process::Command::new("swaks")
        .args(args)
        .output()
        .expect("swaks is installed by scripts/real-mta.sh");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let code = text
        .lines()
        // `<** ` marks a failing reply in clear, `<~* ` inside TLS.
        .filter_map(|l| l.strip_prefix("<** ").or_else(|| l.strip_prefix("<~* ")))
        .find_map(|l| l.get(..3).and_then(|c| c.parse().ok()));
    (out.status.success(), code)
}

#[tokio::test]
async fn swaks_agrees_on_success_and_reply_codes() {
    let Some(m) = mta("swaks_agrees_on_success_and_reply_codes") else {
        return;
    };
    let server = |port: u16| format!("127.0.0.1:{port}");
    struct Case {
        name: &'static str,
        port: u16,
        tls: TlsChoice,
        password: String,
        to: Option<&'static str>,
    }
    let cases = [
        Case {
            name: "587 good password",
            port: m.submission,
            tls: TlsChoice::Starttls,
            password: m.password.clone(),
            to: None,
        },
        Case {
            name: "465 good password",
            port: m.submissions,
            tls: TlsChoice::Implicit,
            password: m.password.clone(),
            to: None,
        },
        Case {
            name: "587 wrong password",
            port: m.submission,
            tls: TlsChoice::Starttls,
            password: "wrong-password".into(),
            to: None,
        },
        Case {
            name: "465 wrong password",
            port: m.submissions,
            tls: TlsChoice::Implicit,
            password: "wrong-password".into(),
            to: None,
        },
        Case {
            name: "587 unknown recipient",
            port: m.submission,
            tls: TlsChoice::Starttls,
            password: m.password.clone(),
            to: Some("nobody@localhost.test"),
        },
        Case {
            name: "587 send to self",
            port: m.submission,
            tls: TlsChoice::Starttls,
            password: m.password.clone(),
            to: Some("probe@localhost.test"),
        },
    ];
    for c in cases {
        let mut config = m.config(c.port, c.tls);
        m.login(&mut config, &c.password, AuthChoice::Plain);
        let mut args: Vec<String> = vec![
            "--server".into(),
            server(c.port),
            "--auth".into(),
            "PLAIN".into(),
            "--auth-user".into(),
            m.user.clone(),
            "--auth-password".into(),
            c.password.clone(),
            "--ehlo".into(),
            "client.test".into(),
            "--timeout".into(),
            "10".into(),
        ];
        args.push(
            if c.tls == TlsChoice::Implicit {
                "--tls-on-connect"
            } else {
                "--tls"
            }
            .into(),
        );
        match c.to {
            Some(to) => {
                config.mail = Some(smtprobe::MailTarget {
                    from: m.user.clone(),
                    to: vec![to.into()],
                });
                args.extend(["--from".into(), m.user.clone(), "--to".into(), to.into()]);
            }
            None => args.extend(["--quit-after".into(), "AUTH".into()]),
        }
        let r = check(config).await.unwrap();
        let (swaks_ok, swaks_code) = swaks(&args);
        let ours = r.reply.as_ref().map(|r| r.code());
        assert_eq!(
            (r.ok(), ours),
            (swaks_ok, swaks_code),
            "{}: smtprobe {:?}, swaks {:?}",
            c.name,
            r.failure,
            (swaks_ok, swaks_code)
        );
    }
}

// ---- issue 13: CRAM-MD5 and SCRAM through Postfix's Dovecot SASL, client certificates
// (smtpd_tls_ask_ccert + smtpd_tls_req_ccert), message_size_limit -----------------------

fn mta_var(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| {
        panic!("{k} is not set: scripts/real-mta.sh up (issue 13 version) exports it")
    })
}

impl Mta {
    /// Addresses a test message to the test user, with a unique Subject (returned).
    fn mail_to_self(&self, c: &mut Config, tag: &str) -> String {
        let subject = format!("{tag} {:?}", std::time::SystemTime::now());
        c.message.headers = vec![("Subject".into(), subject.clone())];
        c.mail = Some(smtprobe::MailTarget {
            from: self.user.clone(),
            to: vec![self.user.clone()],
        });
        subject
    }
}

/// The rig's client certificate (signed by its throwaway CA, CN "smtprobe test client").
fn client_cert() -> std::sync::Arc<smtprobe::ClientCert> {
    std::sync::Arc::new(
        smtprobe::ClientCert::load(
            std::path::Path::new(&mta_var("SMTPROBE_MTA_CLIENT_CERT")),
            std::path::Path::new(&mta_var("SMTPROBE_MTA_CLIENT_KEY")),
        )
        .unwrap(),
    )
}

/// Waits for a delivered message containing `needle`; returns it (from its "From " line).
async fn delivered(mailbox: &str, needle: &str) -> String {
    for _ in 0..50 {
        let text = std::fs::read_to_string(mailbox).unwrap_or_default();
        // virtual(8) may still be appending: take it once the file stops growing.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let grown = std::fs::metadata(mailbox).map_or(0, |m| m.len()) != text.len() as u64;
        if let (Some(at), false) = (text.find(needle), grown) {
            let start = text[..at].rfind("\nFrom ").map_or(0, |i| i + 1);
            let end = text[at..].find("\nFrom ").map_or(text.len(), |i| at + i);
            return text[start..end].to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no message with {needle:?} in {mailbox}");
}

#[tokio::test]
async fn cram_md5_and_scram_through_dovecot_sasl() {
    let Some(m) = mta("cram_md5_and_scram_through_dovecot_sasl") else {
        return;
    };
    for (choice, want) in [
        (AuthChoice::CramMd5, "CRAM-MD5"),
        (AuthChoice::ScramSha1, "SCRAM-SHA-1"),
        (AuthChoice::ScramSha256, "SCRAM-SHA-256"),
        // Auto: the strongest of PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256.
        (AuthChoice::Auto, "SCRAM-SHA-256"),
    ] {
        for (port, tls) in [
            (m.submission, TlsChoice::Starttls),
            (m.submissions, TlsChoice::Implicit),
        ] {
            let mut c = m.config(port, tls);
            m.login(&mut c, &m.password, choice);
            let r = check(c).await.unwrap();
            assert_eq!(code(&r), "ok", "{want} on {port}: {:?}", r.failure);
            let mech = r.settings.as_ref().and_then(|s| s.mechanism.clone());
            assert_eq!(mech.as_deref(), Some(want));
            let text: Vec<&str> = r
                .transcript
                .entries()
                .iter()
                .map(|e| e.text.as_str())
                .collect();
            if want.starts_with("SCRAM") {
                // Dovecot's server-final arrives as a 334 and verifies.
                assert!(
                    text.iter()
                        .any(|t| t.contains("server's signature verified")),
                    "{text:#?}"
                );
                assert!(
                    text.contains(&"334 <redacted: SCRAM server signature>"),
                    "{text:#?}"
                );
            }
            if choice == AuthChoice::Auto {
                assert!(
                    r.notes
                        .iter()
                        .any(|n| n.contains("automatic mechanism choice: SCRAM-SHA-256")),
                    "{:?}",
                    r.notes
                );
            }
            assert!(!text.iter().any(|t| t.contains(&m.password)));
        }
        // The wrong password is still plain bad credentials, whatever the mechanism.
        let mut c = m.config(m.submissions, TlsChoice::Implicit);
        m.login(&mut c, "definitely-wrong", choice);
        let r = check(c).await.unwrap();
        assert_eq!(code(&r), "auth.bad-credentials", "{want}: {:?}", r.failure);
    }
}

#[tokio::test]
async fn client_certificate_required_by_postfix() {
    let Some(m) = mta("client_certificate_required_by_postfix") else {
        return;
    };
    let port: u16 = mta_var("SMTPROBE_MTA_CCERT_PORT").parse().unwrap();
    // Without a certificate Postfix refuses (smtpd_tls_req_ccert): 421 after the handshake.
    let r = check(m.config(port, TlsChoice::Implicit)).await.unwrap();
    assert_ne!(code(&r), "ok");
    assert_eq!(
        r.reply.as_ref().map(|r| r.code()),
        Some(421),
        "{:?}",
        r.failure
    );
    assert!(
        r.diagnosis
            .hints
            .iter()
            .any(|h| h.contains("client certificate setting")),
        "{:?}",
        r.diagnosis.hints
    );
    // With it: greeting, AUTH and a message, whose Received header shows Postfix verified
    // the certificate.
    let mut c = m.config(port, TlsChoice::Implicit);
    c.client_cert = Some(client_cert());
    m.login(&mut c, &m.password, AuthChoice::Auto);
    let subject = m.mail_to_self(&mut c, "ccert");
    let r = check(c).await.unwrap();
    assert_eq!(code(&r), "ok", "{:?}", r.failure);
    let msg = delivered(&m.mailbox, &subject).await;
    assert!(
        msg.contains("Client CN \"smtprobe test client\"") && msg.contains("verified OK"),
        "{msg}"
    );
}

#[tokio::test]
async fn size_probe_against_message_size_limit() {
    let Some(m) = mta("size_probe_against_message_size_limit") else {
        return;
    };
    let limit: u64 = mta_var("SMTPROBE_MTA_SIZE_LIMIT").parse().unwrap();
    let attempt = |size: u64, subject: &str| {
        let mut c = m.config(m.submissions, TlsChoice::Implicit);
        m.login(&mut c, &m.password, AuthChoice::Auto);
        c.message.size = Some(size);
        c.message.headers = vec![("Subject".into(), subject.to_owned())];
        c.mail = Some(smtprobe::MailTarget {
            from: m.user.clone(),
            to: vec![m.user.clone()],
        });
        check(c)
    };
    // Over the announced SIZE: refused before MAIL FROM, and the report says why.
    let r = attempt(limit + 1, "too big").await.unwrap();
    assert_eq!(
        (code(&r), r.failed_stage),
        ("send.message-too-large", Some(smtprobe::Stage::Mail)),
        "{:?}",
        r.failure
    );
    assert!(!r
        .transcript
        .entries()
        .iter()
        .any(|e| e.text.starts_with("MAIL FROM")));
    let note = format!(
        "the server announced SIZE {limit}; the message is {} bytes: it does not fit",
        limit + 1
    );
    assert!(
        r.notes.iter().any(|n| n.starts_with(&note)),
        "{:?}",
        r.notes
    );
    // Under it (with room for Postfix's own Received header): accepted and delivered,
    // the exact size declared with SIZE=.
    let size = limit / 2;
    let subject = format!("size probe {:?}", std::time::SystemTime::now());
    let r = attempt(size, &subject).await.unwrap();
    assert_eq!(code(&r), "ok", "{:?}", r.failure);
    assert!(r
        .transcript
        .entries()
        .iter()
        .any(|e| e.text.ends_with(&format!("SIZE={size}"))));
    let msg = delivered(&m.mailbox, &subject).await;
    // The mbox keeps LF line ends; counted as CRLF, it is our message plus the headers
    // Postfix added.
    let crlf_size = (msg.len() + msg.matches('\n').count()) as u64;
    assert!(crlf_size > size, "{crlf_size} bytes delivered for {size}");
    assert!(msg.contains("smtprobe-size-filler-"));
}

#[tokio::test]
async fn quit_after_stops_a_real_check_early() {
    let Some(m) = mta("quit_after_stops_a_real_check_early") else {
        return;
    };
    let mut c = m.config(m.submission, TlsChoice::Starttls);
    m.login(&mut c, &m.password, AuthChoice::Auto);
    c.quit_after = Some(smtprobe::Stage::Tls);
    let r = check(c).await.unwrap();
    assert_eq!(code(&r), "ok", "{:?}", r.failure);
    assert!(
        r.diagnosis.summary.contains("not tested: AUTH"),
        "{}",
        r.diagnosis.summary
    );
    assert!(!r
        .transcript
        .entries()
        .iter()
        .any(|e| e.text.starts_with("AUTH")));
    assert!(r.tls.is_some());
}

#[tokio::test]
async fn sasl_external_with_the_client_certificate_through_dovecot_submission() {
    let Some(m) = mta("sasl_external_with_the_client_certificate") else {
        return;
    };
    let port: u16 = mta_var("SMTPROBE_MTA_EXTERNAL_PORT").parse().unwrap();
    let cert = client_cert();
    let external = |authzid: &str| {
        let mut c = m.config(port, TlsChoice::Implicit);
        c.client_cert = Some(cert.clone());
        c.auth = Some(AuthConfig {
            user: authzid.into(),
            credential: Credential::External,
        });
        c
    };
    // The identity comes from the certificate (CN "smtprobe test client"); the message is
    // relayed on to Postfix and delivered.
    let mut c = external("");
    let subject = m.mail_to_self(&mut c, "external");
    let r = check(c).await.unwrap();
    assert_eq!(code(&r), "ok", "{:?}", r.failure);
    assert_eq!(
        r.settings.as_ref().and_then(|s| s.mechanism.as_deref()),
        Some("EXTERNAL")
    );
    assert!(r
        .transcript
        .entries()
        .iter()
        .any(|e| e.text == "AUTH EXTERNAL ="));
    delivered(&m.mailbox, &subject).await;
    // Another authorization identity than the certificate's is refused.
    let r = check(external("someone-else")).await.unwrap();
    assert_eq!(code(&r), "auth.bad-credentials", "{:?}", r.failure);
}
