//! The names diagnosis texts use for smtprobe's settings, and the command-line flag each
//! one is called by.
//!
//! Fix texts and hints in the library name settings ("the TLS mode STARTTLS"), never
//! command-line flags: the library also serves `serve`, `batch`, the JSON output and
//! programs that embed it, where a flag means nothing. The CLI adds its flag names when
//! it renders, with [`with_cli_flags`] ("the TLS mode STARTTLS (--tls starttls)").

use crate::tls_mode::TlsMode;

/// Every setting phrase the texts use, with its flag. Longer phrases first, so a phrase
/// that contains another is matched whole.
#[cfg(feature = "cli")]
pub const NAMES: &[(&str, &str)] = &[
    ("the TLS mode implicit TLS", "--tls implicit"),
    ("the TLS mode STARTTLS", "--tls starttls"),
    ("the TLS mode none", "--tls none"),
    (
        "the plaintext-authentication setting",
        "--allow-plaintext-auth",
    ),
    ("the recipient address setting", "--to"),
    ("the sender address setting", "--from"),
    ("the user name setting", "--user"),
    ("the EHLO name setting", "--helo"),
    ("the trusted CA setting", "--ca-file"),
    ("the OAuth token setting", "--oauth2-token-env"),
    ("the mechanism setting", "--auth"),
    ("the IPv4-only setting", "-4"),
    ("the timeout setting", "--timeout"),
    ("the port setting", "--port"),
    // Issue 13.
    (
        "the client certificate setting",
        "--client-cert PEM --client-key PEM",
    ),
    ("the proxy setting", "--proxy"),
];

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
        for (phrase, flag) in NAMES {
            if let Some(after) = rest.strip_prefix(phrase) {
                out.push_str(phrase);
                // "the port setting 465" -> "the port setting 465 (--port 465)".
                let digits: String = after
                    .strip_prefix(' ')
                    .map(|a| a.chars().take_while(char::is_ascii_digit).collect())
                    .unwrap_or_default();
                if *flag == "--port" && !digits.is_empty() {
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
        for (phrase, flag) in NAMES {
            assert!(flag.starts_with('-'), "{phrase}");
        }
    }
}
