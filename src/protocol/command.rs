//! Client commands (RFC 5321 §4.1) and their encoding.
//!
//! Every value placed in a command line is checked for CR, LF and NUL before the command
//! exists (see [`check_line_safe`]): a user name or address carrying `\r\n` could otherwise
//! inject a second command.

use crate::setting::Setting;
use std::fmt;

/// A setting whose value cannot be placed on a command line, or cannot be used.
/// `Display` names the setting in words ("the EHLO name setting: contains a space");
/// the CLI names its flag instead (`Setting::cli_flag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeValue {
    /// The setting the value belongs to.
    pub what: Setting,
    /// Why it was refused; other settings it names are phrases of `Setting`.
    pub reason: &'static str,
}

impl fmt::Display for UnsafeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.reason)
    }
}

impl std::error::Error for UnsafeValue {}

/// Refuses values that would break or forge a command line.
pub fn check_line_safe(what: Setting, value: &str) -> Result<(), UnsafeValue> {
    if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err(UnsafeValue {
            what,
            reason: "contains a CR or LF, which would inject a second SMTP command",
        });
    }
    if value
        .bytes()
        .any(|b| b == 0 || (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        return Err(UnsafeValue {
            what,
            reason: "contains a control character",
        });
    }
    Ok(())
}

/// Checks a mailbox for MAIL FROM / RCPT TO: no line breaks, no angle brackets or spaces
/// (we add the brackets), and an `@` (RFC 5321 §4.1.2 Mailbox).
pub fn check_mailbox(what: Setting, addr: &str) -> Result<(), UnsafeValue> {
    check_line_safe(what, addr)?;
    if addr.is_empty() {
        return Err(UnsafeValue {
            what,
            reason: "is empty",
        });
    }
    if addr.contains(['<', '>', ' ', '\t']) {
        return Err(UnsafeValue {
            what,
            reason:
                "must be a bare address like me@example.org (no display name, brackets or spaces)",
        });
    }
    match addr.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(()),
        _ => Err(UnsafeValue {
            what,
            reason: "must be an address of the form local@domain",
        }),
    }
}

/// Checks an EHLO name: a domain or an address literal, never empty (RFC 5321 §4.1.1.1).
pub fn check_helo_name(name: &str) -> Result<(), UnsafeValue> {
    check_line_safe(Setting::Helo, name)?;
    if name.is_empty() {
        return Err(UnsafeValue {
            what: Setting::Helo,
            reason: "is empty (RFC 5321 requires a domain or address literal)",
        });
    }
    if name.contains([' ', '\t']) {
        return Err(UnsafeValue {
            what: Setting::Helo,
            reason: "contains a space",
        });
    }
    Ok(())
}

/// A command the client sends. Credentials never appear here: AUTH lines are built by
/// [`super::sasl`] and recorded redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `EHLO name`
    Ehlo(String),
    /// `HELO name`
    Helo(String),
    /// `STARTTLS`
    StartTls,
    /// `MAIL FROM:<addr>` with optional `SIZE=n` and other parameters.
    MailFrom {
        /// The reverse path.
        addr: String,
        /// Declared message size (RFC 1870), when the server announced SIZE.
        size: Option<u64>,
        /// Further parameters: `BODY=8BITMIME` (RFC 6152), `SMTPUTF8` (RFC 6531).
        params: Vec<&'static str>,
    },
    /// `RCPT TO:<addr>`
    RcptTo(String),
    /// `DATA`
    Data,
    /// `QUIT`
    Quit,
    /// `RSET`
    Rset,
    /// `NOOP`
    Noop,
}

impl Command {
    /// The command line without CRLF.
    pub fn line(&self) -> String {
        match self {
            Command::Ehlo(n) => format!("EHLO {n}"),
            Command::Helo(n) => format!("HELO {n}"),
            Command::StartTls => "STARTTLS".into(),
            Command::MailFrom { addr, size, params } => {
                let mut l = format!("MAIL FROM:<{addr}>");
                if let Some(s) = size {
                    l.push_str(&format!(" SIZE={s}"));
                }
                for p in params {
                    l.push(' ');
                    l.push_str(p);
                }
                l
            }
            Command::RcptTo(a) => format!("RCPT TO:<{a}>"),
            Command::Data => "DATA".into(),
            Command::Quit => "QUIT".into(),
            Command::Rset => "RSET".into(),
            Command::Noop => "NOOP".into(),
        }
    }

    /// The bytes to send: the line and CRLF.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut v = self.line().into_bytes();
        v.extend_from_slice(b"\r\n");
        v
    }

    /// The verb of a command line received by a server (upper-cased), e.g. `MAIL`.
    pub fn verb_of(line: &[u8]) -> String {
        let end = line
            .iter()
            .position(|&b| b == b' ' || b == b':')
            .unwrap_or(line.len());
        String::from_utf8_lossy(&line[..end]).to_ascii_uppercase()
    }

    /// The first argument of a command line, upper-cased: AUTH's mechanism name
    /// (`AUTH plain xyz` gives `PLAIN`, RFC 4954 §4); empty when there is none.
    pub fn first_arg_of(line: &[u8]) -> String {
        let args = Command::args_of(line);
        let args = &args[args.iter().take_while(|&&b| b == b' ').count()..];
        let end = args.iter().position(|&b| b == b' ').unwrap_or(args.len());
        String::from_utf8_lossy(&args[..end]).to_ascii_uppercase()
    }

    /// What follows the verb of a command line and its space (`EHLO client.example`
    /// gives `client.example`, `AUTH PLAIN xyz` gives `PLAIN xyz`); empty when nothing
    /// does. RFC 5321 §4.1.1: verb and arguments are separated by one SP.
    pub fn args_of(line: &[u8]) -> &[u8] {
        match line.iter().position(|&b| b == b' ') {
            Some(i) => &line[i + 1..],
            None => &[],
        }
    }
}

/// Dot-stuffs a message body (RFC 5321 §4.5.2), normalises line ends to CRLF, and appends
/// the terminating `.` line.
pub fn encode_data(body: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    for line in body.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // `split` yields a trailing empty piece for a body ending in LF; drop its CRLF.
    if body.ends_with('\n') {
        out.truncate(out.len() - 2);
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_arg_is_the_mechanism() {
        assert_eq!(Command::first_arg_of(b"AUTH plain dGVzdA=="), "PLAIN");
        assert_eq!(Command::first_arg_of(b"AUTH  LOGIN"), "LOGIN");
        assert_eq!(Command::first_arg_of(b"AUTH"), "");
        assert_eq!(Command::first_arg_of(b"AUTH "), "");
    }

    #[test]
    fn lines_are_encoded() {
        assert_eq!(
            Command::Ehlo("a.example".into()).to_wire(),
            b"EHLO a.example\r\n"
        );
        assert_eq!(
            Command::MailFrom {
                addr: "me@x.org".into(),
                size: Some(42),
                params: vec![],
            }
            .line(),
            "MAIL FROM:<me@x.org> SIZE=42"
        );
        assert_eq!(
            Command::MailFrom {
                addr: "j\u{f6}rg@x.org".into(),
                size: None,
                params: vec!["BODY=8BITMIME", "SMTPUTF8"],
            }
            .line(),
            "MAIL FROM:<j\u{f6}rg@x.org> BODY=8BITMIME SMTPUTF8"
        );
        assert_eq!(Command::verb_of(b"MAIL FROM:<a@b>"), "MAIL");
        assert_eq!(Command::verb_of(b"quit"), "QUIT");
        assert_eq!(Command::args_of(b"EHLO client.example"), b"client.example");
        assert_eq!(Command::args_of(b"AUTH PLAIN AGEAYg=="), b"PLAIN AGEAYg==");
        assert_eq!(Command::args_of(b"QUIT"), b"");
    }

    #[test]
    fn crlf_injection_is_refused() {
        assert!(check_mailbox(Setting::To, "a@b.org\r\nRCPT TO:<x@y>").is_err());
        assert!(check_line_safe(Setting::User, "me\n").is_err());
        assert!(check_line_safe(Setting::User, "me\0").is_err());
        assert!(check_helo_name("").is_err());
        assert!(check_helo_name("host\r\nQUIT").is_err());
        assert!(check_mailbox(Setting::From, "Me <me@x.org>").is_err());
        assert!(check_mailbox(Setting::From, "nobody").is_err());
        assert!(check_mailbox(Setting::From, "me@x.org").is_ok());
    }

    #[test]
    fn data_is_dot_stuffed_with_crlf() {
        assert_eq!(
            encode_data("a\n.b\r\n..c\nd"),
            b"a\r\n..b\r\n...c\r\nd\r\n.\r\n".to_vec()
        );
        assert_eq!(encode_data("x\n"), b"x\r\n.\r\n".to_vec());
        assert_eq!(encode_data("."), b"..\r\n.\r\n".to_vec());
    }
}
