//! Secrets that cannot leak through formatting.
//!
//! DESIGN habit 5: a password is wrapped the moment it is read, and the wrapper has no
//! `Debug`/`Display` that shows its content, in any build. The only way to the bytes is
//! [`Secret::expose`], which is called in exactly the places that put it on the wire.

use std::fmt;

/// A password, token or other credential. Formatting it prints `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The credential itself. Call only to encode it for the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort: overwrite the bytes before the allocation is freed.
        // SAFETY-free approach: replace with zeros of the same length through safe API.
        let len = self.0.len();
        self.0.clear();
        self.0.extend(std::iter::repeat_n('\0', len));
        self.0.clear();
    }
}

/// Stands for a secret that is not a [`Secret`] (a clap field, a URL) in a hand-written
/// `Debug`: it formats as `<redacted>`. Only the CLI's flag structs use it so far.
#[cfg(feature = "cli")]
pub(crate) struct Redacted;

#[cfg(feature = "cli")]
impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// An optional secret for a hand-written `Debug`: `Some(<redacted>)` or `None`, so the
/// structure stays visible.
#[cfg(feature = "cli")]
pub(crate) fn redacted<T>(value: &Option<T>) -> Option<Redacted> {
    value.as_ref().map(|_| Redacted)
}

/// Every form in which `secret` (a password or token of at least six characters, sent
/// for `user`) could leak, labelled: in clear; in base64 at each of the three alignments
/// (so any base64 payload that contains it is caught, HTTP Basic and the SASL ones
/// alike); and the whole LOGIN, PLAIN (with and without authorization identity),
/// XOAUTH2 and OAUTHBEARER payloads. Tests that prove redaction search output for each.
pub fn leak_needles(user: &str, secret: &str) -> Vec<(String, String)> {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;
    let b = |s: &str| B64.encode(s.as_bytes());
    let mut v = vec![("in clear".to_owned(), secret.to_owned())];
    // Base64 maps 3 bytes to 4 characters. After `k` leading bytes, the characters of
    // the complete groups that hold only secret bytes are the same whatever came before.
    for k in 0..3usize {
        let skip = if k == 0 { 0 } else { 3 - k };
        let groups = secret.len().saturating_sub(skip) / 3;
        let padded = format!("{}{secret}", "\0".repeat(k));
        let start = if k == 0 { 0 } else { 4 };
        let run = &b(&padded)[start..start + 4 * groups];
        if run.len() >= 4 {
            v.push((format!("base64 at offset {k}"), run.to_owned()));
        }
    }
    v.extend([
        ("LOGIN payload".to_owned(), b(secret)),
        (
            "PLAIN payload".to_owned(),
            b(&format!("\0{user}\0{secret}")),
        ),
        (
            "PLAIN payload with authzid".to_owned(),
            b(&format!("{user}\0{user}\0{secret}")),
        ),
        (
            "XOAUTH2 payload".to_owned(),
            b(&format!("user={user}\x01auth=Bearer {secret}\x01\x01")),
        ),
        (
            "OAUTHBEARER payload".to_owned(),
            b(&format!("n,a={user},\x01auth=Bearer {secret}\x01\x01")),
        ),
    ]);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_value() {
        let s = Secret::new("hunter2-sentinel");
        assert_eq!(format!("{s}"), "<redacted>");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{:#?}", Some(&s)).contains("hunter2"));
        assert_eq!(s.expose(), "hunter2-sentinel");
    }

    #[test]
    fn needles_catch_the_secret_inside_any_base64_payload() {
        use base64::engine::general_purpose::STANDARD as B64;
        use base64::Engine as _;
        let needles = leak_needles("u@example.com", "S3ntinel-Pa55-ZZ");
        // HTTP Basic is not listed by name: the alignment runs must catch it.
        for prefix in ["", "a", "ab", "user:", "proxy-user:"] {
            let wire = B64.encode(format!("{prefix}S3ntinel-Pa55-ZZ!"));
            assert!(
                needles.iter().any(|(_, n)| wire.contains(n.as_str())),
                "{prefix:?}: {wire}"
            );
        }
        assert!(!needles.iter().any(|(_, n)| n.is_empty()));
    }
}

/// Proof of "no type that can hold a secret derives `Debug`": each such type, built with
/// a sentinel password or token, formats (`{:?}` and `{:#?}`) without it.
#[cfg(test)]
mod debug_redaction {
    use super::*;
    use crate::protocol::sasl;
    use crate::session::{AuthChoice, AuthConfig, Credential, Io, Session, SessionConfig};

    const USER: &str = "sentinel@example.com";
    const PASSWORD: &str = "S3ntinel-Pa55-ZZ";
    const TOKEN: &str = "ya29.S3ntinel-T0ken-QQ";

    /// Fails naming the value and the leak when `value`'s `Debug` shows a sentinel.
    fn assert_redacted(what: &str, value: &dyn fmt::Debug) {
        let needles: Vec<_> = leak_needles(USER, PASSWORD)
            .into_iter()
            .chain(leak_needles(USER, TOKEN))
            .collect();
        for shown in [format!("{value:?}"), format!("{value:#?}")] {
            for (label, needle) in &needles {
                assert!(
                    !shown.contains(needle.as_str()),
                    "{what}: Debug shows the secret ({label})"
                );
            }
        }
    }

    fn password(choice: AuthChoice) -> AuthConfig {
        AuthConfig {
            user: USER.into(),
            credential: Credential::Password {
                secret: Secret::new(PASSWORD),
                choice,
            },
        }
    }

    fn token() -> AuthConfig {
        AuthConfig {
            user: USER.into(),
            credential: Credential::OAuthToken(Secret::new(TOKEN)),
        }
    }

    fn session_config(auth: AuthConfig) -> SessionConfig {
        SessionConfig {
            helo: "client.example".into(),
            mode: crate::TlsMode::None,
            auth: Some(auth),
            allow_plaintext_auth: true,
            mail: None,
            pipelining: true,
            nonce: "fyko+d2lbbFgONRv9qkxdawL".into(),
            quit_after: None,
        }
    }

    /// A session that has queued its AUTH credentials (after `replies`) and not yet been
    /// drained: the `Debug` is taken with the secret inside, then the wire is checked to
    /// prove it was.
    fn assert_session_redacted(what: &str, auth: AuthConfig, replies: &[&str]) {
        let mut s = Session::new(session_config(auth));
        s.handle_input(b"220 mx.example ESMTP\r\n");
        s.handle_input(b"250-mx.example\r\n250 AUTH PLAIN LOGIN XOAUTH2\r\n");
        let mut wire = Vec::new();
        for reply in replies {
            while let Some(e) = s.poll_io() {
                if let Io::Transmit(b) = e {
                    wire.extend(b);
                }
            }
            s.handle_input(reply.as_bytes());
        }
        assert_redacted(what, &s);
        let mut leaked = false;
        while let Some(e) = s.poll_io() {
            if let Io::Transmit(b) = &e {
                assert_redacted(&format!("{what}: Io::Transmit"), &e);
                wire.extend(b);
                leaked = true;
            }
        }
        let wire = String::from_utf8_lossy(&wire);
        assert!(
            leaked
                && [PASSWORD, TOKEN]
                    .iter()
                    .flat_map(|s| leak_needles(USER, s))
                    .any(|(_, n)| wire.contains(n.as_str())),
            "{what}: the session was to hold the credential when formatted: {wire}"
        );
    }

    #[test]
    fn no_debug_string_shows_a_secret() {
        // The session layer.
        assert_redacted(
            "Credential::Password",
            &password(AuthChoice::Plain).credential,
        );
        assert_redacted("Credential::OAuthToken", &token().credential);
        assert_redacted("AuthConfig", &password(AuthChoice::Auto));
        assert_redacted("SessionConfig", &session_config(token()));
        assert_session_redacted("Session (PLAIN)", password(AuthChoice::Plain), &[]);
        assert_session_redacted(
            "Session (LOGIN)",
            password(AuthChoice::Login),
            &["334 VXNlcm5hbWU6\r\n", "334 UGFzc3dvcmQ6\r\n"],
        );
        assert_session_redacted("Session (XOAUTH2)", token(), &[]);

        // The SASL encoders and their state.
        let pw = Secret::new(PASSWORD);
        let tok = Secret::new(TOKEN);
        let encoded = [
            sasl::plain_initial(USER, &pw).expect("fits one line"),
            sasl::plain_response(USER, &pw),
            sasl::login_password(&pw),
            sasl::xoauth2_initial(USER, &tok),
            sasl::oauthbearer_initial(USER, &tok),
            sasl::cram_md5_response(USER, &pw, b"<1896.697170952@postoffice.example>"),
        ];
        for e in &encoded {
            assert_redacted("sasl::Encoded", e);
            assert_redacted("Io::Transmit", &Io::Transmit(e.wire.clone()));
        }
        let (first, start) =
            sasl::scram_initial(sasl::ScramHash::Sha256, USER, "rOprNGfwEbeRWgbNEkqO");
        assert_redacted("sasl::Encoded (SCRAM)", &first);
        assert_redacted("sasl::ScramStart", &start);

        // The library's front door and the proxy.
        let proxy = crate::proxy::ProxyConfig::parse(&format!(
            "socks5://proxy-user:{PASSWORD}@127.0.0.1:1080"
        ))
        .expect("a valid proxy URL");
        assert_redacted("ProxyConfig", &proxy);
        let mut config = crate::Config::new("smtp.example.com");
        config.auth = Some(password(AuthChoice::Auto));
        config.proxy = Some(proxy);
        assert_redacted("probe::Config", &config);
        config.auth = Some(token());
        assert_redacted("probe::Config (token)", &config);
    }

    /// The CLI (the `cli` feature): `--password`, a `--proxy` URL with a password,
    /// `--password-command`.
    #[cfg(feature = "cli")]
    #[test]
    fn no_cli_debug_string_shows_a_secret() {
        use clap::Parser as _;
        let proxy_url = format!("http://proxy-user:{PASSWORD}@127.0.0.1:3128");
        let command = format!("printf %s {PASSWORD}");
        for argv in [
            vec!["--password", PASSWORD, "--proxy", &proxy_url],
            vec!["--password-command", &command],
        ] {
            let mut full = vec!["smtprobe", "check", "smtp.example.com", "--user", USER];
            full.extend(argv);
            let cli = crate::app::cli::Cli::try_parse_from(full).expect("valid flags");
            let crate::app::cli::Command::Check(args) = &cli.command else {
                panic!("`check` parses as Command::Check");
            };
            assert!(
                args.password.as_deref() == Some(PASSWORD)
                    || args.password_command.as_deref() == Some(command.as_str()),
                "the sentinel was parsed into CheckArgs"
            );
            assert_redacted("CheckArgs", args);
            assert_redacted("Command", &cli.command);
            assert_redacted("Cli", &cli);
        }
    }
}
