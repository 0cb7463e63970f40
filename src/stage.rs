//! The stages of one check, in the order they run.

use serde::Serialize;
use std::fmt;

/// One step of the SMTP submission conversation (plus the network steps before it).
///
/// `dns → [proxy] → connect → [tls if implicit] → greeting → ehlo → [starttls → tls → ehlo] → auth →
/// [mail → rcpt → data] → quit`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Resolving the host name.
    Dns,
    /// The proxy handshake (SOCKS5 RFC 1928, HTTP CONNECT), when [`crate::Config::proxy`]
    /// is set.
    Proxy,
    /// Opening the TCP connection.
    Connect,
    /// The TLS handshake (implicit TLS, or after STARTTLS).
    Tls,
    /// Waiting for the server's 220 greeting (RFC 5321 §4.3.1).
    Greeting,
    /// EHLO and its capability list (RFC 5321 §4.1.1.1).
    Ehlo,
    /// The STARTTLS command (RFC 3207).
    Starttls,
    /// SMTP AUTH (RFC 4954).
    Auth,
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// DATA and the message body.
    Data,
    /// QUIT.
    Quit,
}

impl Stage {
    /// The lowercase name used in JSON, fixtures and the human report.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Dns => "dns",
            Stage::Proxy => "proxy",
            Stage::Connect => "connect",
            Stage::Tls => "tls",
            Stage::Greeting => "greeting",
            Stage::Ehlo => "ehlo",
            Stage::Starttls => "starttls",
            Stage::Auth => "auth",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
            Stage::Quit => "quit",
        }
    }

    /// Every stage, in protocol order.
    /// (`Proxy` is appended last rather than after `Dns`, so the positions of the
    /// original eleven stages stay stable for code that slices this array.)
    pub const ALL: [Stage; 12] = [
        Stage::Dns,
        Stage::Connect,
        Stage::Tls,
        Stage::Greeting,
        Stage::Ehlo,
        Stage::Starttls,
        Stage::Auth,
        Stage::Mail,
        Stage::Rcpt,
        Stage::Data,
        Stage::Quit,
        Stage::Proxy,
    ];

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
