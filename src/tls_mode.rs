//! How a connection is secured: [`TlsMode`], the mode a check actually used (in the
//! report, the JSON, fixtures and provider settings). What a user asks for, with `auto`,
//! is [`crate::probe::TlsChoice`]; `TlsChoice::fixed` and `From<TlsMode>` convert.

use serde::Serialize;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain connection, then STARTTLS (RFC 3207), usually port 587.
    Starttls,
    /// TLS from the first byte (RFC 8314), usually port 465.
    Implicit,
    /// No TLS at all (port 25 relay tests, lab servers).
    None,
}

impl TlsMode {
    /// The name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Starttls => "starttls",
            TlsMode::Implicit => "implicit",
            TlsMode::None => "none",
        }
    }

    /// The usual port for the mode: 587, 465, 25.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::Starttls => 587,
            TlsMode::Implicit => 465,
            TlsMode::None => 25,
        }
    }
}
