//! The names smtprobe's settings go by in library text, and the command-line flag each
//! one is called by. A bottom-layer vocabulary (like `stage.rs` and `tls_mode.rs`): the
//! codec's `UnsafeValue`, the message builder, the probe and the diagnosis all name
//! settings with it, so nothing low reaches up into `diagnosis` for it.
//!
//! Fix texts and hints in the library name settings ("the TLS mode STARTTLS"), never
//! command-line flags: the library also serves `serve`, `batch`, the JSON output and
//! programs that embed it, where a flag means nothing. The CLI adds its flag names when
//! it renders, with [`with_cli_flags`] ("the TLS mode STARTTLS (--tls starttls)"), and
//! errors about one setting carry a [`Setting`] whose flag the CLI prints instead
//! ([`Setting::cli_flag`]).

use crate::tls_mode::TlsMode;
use std::fmt;

/// One of smtprobe's settings, as library texts and errors name it. [`fmt::Display`]
/// gives the plain words ("the EHLO name setting"); the CLI renders
/// [`Setting::cli_flag`] instead (`--helo`), or adds it with `with_cli_flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Setting {
    /// The server's host name (`HOST`).
    Host,
    /// The TLS mode, with the value it names.
    TlsMode(TlsMode),
    /// Allowing credentials over a connection without TLS.
    PlaintextAuth,
    /// The test message's recipients.
    To,
    /// The test message's sender.
    From,
    /// The AUTH user name.
    User,
    /// The name sent in EHLO.
    Helo,
    /// Extra trusted CA certificates.
    CaFile,
    /// The OAuth access token.
    OauthToken,
    /// The SASL mechanism.
    Mechanism,
    /// Connecting over IPv4 only.
    Ipv4Only,
    /// The per-wait deadline.
    Timeout,
    /// The port.
    Port,
    /// The TLS client certificate and its key.
    ClientCert,
    /// The proxy.
    Proxy,
    /// An extra header of the test message.
    Header,
    /// The exact size of the test message.
    Size,
    /// A file attached to the test message.
    Attach,
    /// A file holding the test message's body.
    BodyFile,
    /// The stage after which the check stops.
    QuitAfter,
    /// The DNS server discovery asks.
    DnsServer,
}

impl Setting {
    /// Every setting whose phrase diagnosis texts use, longer phrases first, so a phrase
    /// that contains another is matched whole by `with_cli_flags`.
    #[cfg(feature = "cli")]
    pub const IN_TEXTS: &'static [Setting] = &[
        Setting::TlsMode(TlsMode::Implicit),
        Setting::TlsMode(TlsMode::Starttls),
        Setting::TlsMode(TlsMode::None),
        Setting::PlaintextAuth,
        Setting::To,
        Setting::From,
        Setting::User,
        Setting::Helo,
        Setting::CaFile,
        Setting::OauthToken,
        Setting::Mechanism,
        Setting::Ipv4Only,
        Setting::Timeout,
        Setting::Port,
        // Issue 13.
        Setting::ClientCert,
        Setting::Proxy,
    ];

    /// The plain words for it.
    pub fn phrase(self) -> &'static str {
        match self {
            Setting::Host => "the host name",
            Setting::TlsMode(mode) => tls_mode(mode),
            Setting::PlaintextAuth => "the plaintext-authentication setting",
            Setting::To => "the recipient address setting",
            Setting::From => "the sender address setting",
            Setting::User => "the user name setting",
            Setting::Helo => "the EHLO name setting",
            Setting::CaFile => "the trusted CA setting",
            Setting::OauthToken => "the OAuth token setting",
            Setting::Mechanism => "the mechanism setting",
            Setting::Ipv4Only => "the IPv4-only setting",
            Setting::Timeout => "the timeout setting",
            Setting::Port => "the port setting",
            Setting::ClientCert => "the client certificate setting",
            Setting::Proxy => "the proxy setting",
            Setting::Header => "the header setting",
            Setting::Size => "the message size setting",
            Setting::Attach => "the attachment setting",
            Setting::BodyFile => "the body file setting",
            Setting::QuitAfter => "the quit-after setting",
            Setting::DnsServer => "the DNS server setting",
        }
    }

    /// How the command line names it (`HOST` is the positional argument).
    #[cfg(feature = "cli")]
    pub fn cli_flag(self) -> &'static str {
        match self {
            Setting::Host => "HOST",
            Setting::TlsMode(TlsMode::Implicit) => "--tls implicit",
            Setting::TlsMode(TlsMode::Starttls) => "--tls starttls",
            Setting::TlsMode(TlsMode::None) => "--tls none",
            Setting::PlaintextAuth => "--allow-plaintext-auth",
            Setting::To => "--to",
            Setting::From => "--from",
            Setting::User => "--user",
            Setting::Helo => "--helo",
            Setting::CaFile => "--ca-file",
            Setting::OauthToken => "--oauth2-token-env",
            Setting::Mechanism => "--auth",
            Setting::Ipv4Only => "-4",
            Setting::Timeout => "--timeout",
            Setting::Port => "--port",
            Setting::ClientCert => "--client-cert PEM --client-key PEM",
            Setting::Proxy => "--proxy",
            Setting::Header => "--header",
            Setting::Size => "--size",
            Setting::Attach => "--attach",
            Setting::BodyFile => "--body-file",
            Setting::QuitAfter => "--quit-after",
            Setting::DnsServer => "--dns-server",
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.phrase())
    }
}

/// The phrase for a TLS mode setting.
pub fn tls_mode(mode: TlsMode) -> &'static str {
    match mode {
        TlsMode::Starttls => "the TLS mode STARTTLS",
        TlsMode::Implicit => "the TLS mode implicit TLS",
        TlsMode::None => "the TLS mode none",
    }
}

/// `text` with each setting phrase followed by its flag in parentheses, for the CLI.
#[cfg(feature = "cli")]
pub fn with_cli_flags(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for setting in Setting::IN_TEXTS {
            let (phrase, flag) = (setting.phrase(), setting.cli_flag());
            if let Some(after) = rest.strip_prefix(phrase) {
                out.push_str(phrase);
                // "the port setting 465" -> "the port setting 465 (--port 465)".
                let digits: String = after
                    .strip_prefix(' ')
                    .map(|a| a.chars().take_while(char::is_ascii_digit).collect())
                    .unwrap_or_default();
                if *setting == Setting::Port && !digits.is_empty() {
                    out.push(' ');
                    out.push_str(&digits);
                    out.push_str(&format!(" ({flag} {digits})"));
                    rest = &after[1 + digits.len()..];
                } else {
                    out.push_str(&format!(" ({flag})"));
                    rest = after;
                }
                continue 'scan;
            }
        }
        let ch = rest.chars().next().unwrap_or_default();
        out.push(ch);
        rest = &rest[ch.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_added_after_setting_names() {
        assert_eq!(
            with_cli_flags("Use the TLS mode STARTTLS on 587."),
            "Use the TLS mode STARTTLS (--tls starttls) on 587."
        );
        assert_eq!(
            with_cli_flags("Try port 465 with implicit TLS (the port setting 465, the TLS mode implicit TLS)."),
            "Try port 465 with implicit TLS (the port setting 465 (--port 465), the TLS mode implicit TLS (--tls implicit))."
        );
        assert_eq!(
            with_cli_flags("nothing here — ünïcode"),
            "nothing here — ünïcode"
        );
        for setting in Setting::IN_TEXTS {
            assert!(setting.cli_flag().starts_with('-'), "{setting}");
            let text = format!("Set {setting}.");
            assert_eq!(
                with_cli_flags(&text),
                format!("Set {setting} ({}).", setting.cli_flag()),
                "a longer phrase contains {setting}"
            );
        }
    }
}
