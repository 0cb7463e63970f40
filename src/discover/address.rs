//! The email address the user typed: local part and domain, checked, the domain in both
//! its Unicode and its ASCII (IDNA, UTS #46) forms.

use serde::Serialize;

/// A parsed address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Address {
    /// The address as typed (trimmed).
    pub input: String,
    /// Before the last `@`.
    pub local: String,
    /// The domain in ASCII (A-labels, `xn--…`), lower case: what DNS is asked.
    pub domain: String,
    /// The domain in Unicode, when it differs from [`Address::domain`].
    pub domain_unicode: Option<String>,
}

impl Address {
    /// The address with the ASCII domain (what a mail server sees as the user name
    /// unless it supports SMTPUTF8).
    pub fn ascii(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }
}

/// Why the input is not a usable address, with the input (escaped) it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressError {
    /// The input, escaped for display (control bytes as `\r`, `\xNN`).
    pub shown: String,
    /// What is wrong with it.
    pub kind: AddressErrorKind,
}

/// What is wrong with an address.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressErrorKind {
    /// CR or LF: it could inject SMTP commands.
    LineBreak,
    /// Another control character.
    ControlCharacter,
    /// No `@`.
    NoAt,
    /// Nothing before the `@`.
    NothingBeforeAt,
    /// A space in an unquoted local part.
    Space,
    /// Nothing after the `@`.
    NoDomain,
    /// `[192.0.2.1]`: nothing to look up.
    AddressLiteral,
    /// IDNA (UTS #46) refused the domain (escaped).
    NotIdn(String),
    /// The ASCII domain is not a host name (RFC 1123 §2.1) (escaped).
    NotDomain(String),
}

impl std::fmt::Display for AddressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = &self.shown;
        match &self.kind {
            AddressErrorKind::LineBreak => write!(
                f,
                "the address {shown} contains a line break (CR/LF): it could inject SMTP commands"
            ),
            AddressErrorKind::ControlCharacter => {
                write!(f, "the address {shown} contains a control character")
            }
            AddressErrorKind::NoAt => write!(
                f,
                "{shown} is not an email address: it has no @ (expected you@example.com)"
            ),
            AddressErrorKind::NothingBeforeAt => {
                write!(f, "the address {shown} has nothing before the @")
            }
            AddressErrorKind::Space => write!(f, "the address {shown} contains a space"),
            AddressErrorKind::NoDomain => write!(
                f,
                "the address {shown} has no domain after the @ (expected you@example.com)"
            ),
            AddressErrorKind::AddressLiteral => write!(
                f,
                "the address {shown} has an address literal as its domain: there is nothing to look up"
            ),
            AddressErrorKind::NotIdn(domain) => write!(
                f,
                "the domain {domain} of {shown} is not a valid (internationalised) domain name"
            ),
            AddressErrorKind::NotDomain(domain) => {
                write!(f, "the domain {domain} of {shown} is not a valid domain name")
            }
        }
    }
}

impl std::error::Error for AddressError {}

/// Parses `you@example.com`. The domain is the part after the last `@` (RFC 5321
/// §4.1.2: a quoted local part may itself contain `@`).
pub fn parse(input: &str) -> Result<Address, AddressError> {
    let fail = |kind| AddressError {
        shown: crate::protocol::escape_bytes(input.as_bytes()),
        kind,
    };
    if input.chars().any(|c| c == '\r' || c == '\n') {
        return Err(fail(AddressErrorKind::LineBreak));
    }
    if input.chars().any(char::is_control) {
        return Err(fail(AddressErrorKind::ControlCharacter));
    }
    let input = input.trim();
    let Some((local, domain)) = input.rsplit_once('@') else {
        return Err(fail(AddressErrorKind::NoAt));
    };
    if local.is_empty() {
        return Err(fail(AddressErrorKind::NothingBeforeAt));
    }
    if local.chars().any(char::is_whitespace) && !local.starts_with('"') {
        return Err(fail(AddressErrorKind::Space));
    }
    let domain = domain.trim_end_matches('.');
    if domain.is_empty() {
        return Err(fail(AddressErrorKind::NoDomain));
    }
    if domain.starts_with('[') {
        return Err(fail(AddressErrorKind::AddressLiteral));
    }
    let shown_domain = || crate::protocol::escape_bytes(domain.as_bytes());
    let ascii = idna::domain_to_ascii(domain)
        .map_err(|_| fail(AddressErrorKind::NotIdn(shown_domain())))?;
    // Host names only (RFC 1123 §2.1): letters, digits, hyphens, dots; 253 octets.
    let valid = ascii.len() <= 253
        && ascii.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !valid || !ascii.contains('.') {
        return Err(fail(AddressErrorKind::NotDomain(shown_domain())));
    }
    let (unicode, _) = idna::domain_to_unicode(&ascii);
    Ok(Address {
        input: input.to_owned(),
        local: local.to_owned(),
        domain_unicode: (unicode != ascii).then_some(unicode),
        domain: ascii,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_address() {
        let a = parse("You@Example.COM").unwrap();
        assert_eq!(
            (a.local.as_str(), a.domain.as_str()),
            ("You", "example.com")
        );
        assert_eq!(a.domain_unicode, None);
    }

    #[test]
    fn idn_domain_shows_both_forms() {
        let a = parse("jörg@bücher.example").unwrap();
        assert_eq!(a.domain, "xn--bcher-kva.example");
        assert_eq!(a.domain_unicode.as_deref(), Some("bücher.example"));
        // An A-label typed as such converts back for display too.
        let b = parse("x@xn--bcher-kva.example").unwrap();
        assert_eq!(b.domain_unicode.as_deref(), Some("bücher.example"));
    }

    #[test]
    fn bad_input_is_typed() {
        let e = parse("you@example.com\r\nRSET").unwrap_err();
        assert_eq!(e.kind, AddressErrorKind::LineBreak);
        assert_eq!(e.shown, "you@example.com\\r\\nRSET");
        let e = parse("you@localhost").unwrap_err();
        assert_eq!(e.kind, AddressErrorKind::NotDomain("localhost".into()));
    }

    #[test]
    fn bad_input_is_named() {
        for (input, says) in [
            ("you", "no @"),
            ("you@", "no domain"),
            ("@example.com", "nothing before"),
            ("you@example.com\r\nRSET", "line break"),
            ("you@exa mple.com", "not a valid domain"),
            ("you@localhost", "not a valid domain"),
            ("you@[192.0.2.1]", "address literal"),
            ("you@-bad-.example", "not a valid"),
        ] {
            let e = parse(input).unwrap_err().to_string();
            assert!(e.contains(says), "{input:?}: {e}");
            assert!(!e.contains('\r') && !e.contains('\n'), "{e}");
        }
    }
}
