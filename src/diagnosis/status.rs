//! Built-in tables of SMTP reply codes (RFC 5321 §4.2, RFC 4954 §6, RFC 3207 §4) and
//! enhanced status codes (RFC 3463 §3, RFC 4954, and the IANA registry created by
//! RFC 5248), so a person can read `535 5.7.8` without looking anything up.

use crate::protocol::EnhancedCode;

/// What a basic reply code means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyCodeInfo {
    /// The three-digit code.
    pub code: u16,
    /// The meaning as the standard words it.
    pub meaning: &'static str,
    /// Where it is defined.
    pub rfc: &'static str,
}

/// Every reply code defined by RFC 5321 §4.2.2/§4.2.3, plus RFC 4954 (AUTH), RFC 3207
/// (STARTTLS) and RFC 5248 additions that submission servers send.
pub static REPLY_CODES: &[ReplyCodeInfo] = &[
    rc(
        211,
        "System status, or system help reply",
        "RFC 5321 §4.2.3",
    ),
    rc(
        214,
        "Help message (information for a human)",
        "RFC 5321 §4.2.3",
    ),
    rc(
        220,
        "Service ready (greeting), or ready to start TLS after STARTTLS",
        "RFC 5321 §4.2.3, RFC 3207 §4",
    ),
    rc(
        221,
        "Service closing transmission channel (answer to QUIT)",
        "RFC 5321 §4.2.3",
    ),
    rc(235, "Authentication succeeded", "RFC 4954 §6"),
    rc(
        250,
        "Requested mail action okay, completed",
        "RFC 5321 §4.2.3",
    ),
    rc(251, "User not local; will forward", "RFC 5321 §4.2.3"),
    rc(
        252,
        "Cannot VRFY user, but will accept message and attempt delivery",
        "RFC 5321 §4.2.3",
    ),
    rc(
        334,
        "Server challenge: the AUTH exchange continues (text is base64)",
        "RFC 4954 §4",
    ),
    rc(
        354,
        "Start mail input; end with <CRLF>.<CRLF>",
        "RFC 5321 §4.2.3",
    ),
    rc(
        421,
        "Service not available, closing transmission channel",
        "RFC 5321 §4.2.3",
    ),
    rc(432, "A password transition is needed", "RFC 4954 §6"),
    rc(
        450,
        "Requested mail action not taken: mailbox unavailable (temporary)",
        "RFC 5321 §4.2.3",
    ),
    rc(
        451,
        "Requested action aborted: local error in processing",
        "RFC 5321 §4.2.3",
    ),
    rc(
        452,
        "Requested action not taken: insufficient system storage (or too many recipients)",
        "RFC 5321 §4.2.3, §4.5.3.1.10",
    ),
    rc(
        454,
        "Temporary authentication failure, or TLS not available due to a temporary reason",
        "RFC 4954 §6, RFC 3207 §4",
    ),
    rc(
        455,
        "Server unable to accommodate parameters",
        "RFC 5321 §4.2.3",
    ),
    rc(
        500,
        "Syntax error, command unrecognized (also: line too long)",
        "RFC 5321 §4.2.3",
    ),
    rc(
        501,
        "Syntax error in parameters or arguments",
        "RFC 5321 §4.2.3",
    ),
    rc(502, "Command not implemented", "RFC 5321 §4.2.3"),
    rc(503, "Bad sequence of commands", "RFC 5321 §4.2.3"),
    rc(
        504,
        "Command parameter not implemented (for AUTH: unknown mechanism)",
        "RFC 5321 §4.2.3, RFC 4954 §4",
    ),
    rc(521, "Server does not accept mail", "RFC 7504 §3"),
    rc(523, "Encryption needed", "RFC 5248 §2.4 (X.7.10)"),
    rc(
        530,
        "Authentication required (some servers: must issue STARTTLS first)",
        "RFC 4954 §6, RFC 3207 §4",
    ),
    rc(534, "Authentication mechanism is too weak", "RFC 4954 §6"),
    rc(535, "Authentication credentials invalid", "RFC 4954 §6"),
    rc(
        538,
        "Encryption required for requested authentication mechanism",
        "RFC 4954 §6",
    ),
    rc(
        550,
        "Requested action not taken: mailbox unavailable, or refused for policy reasons",
        "RFC 5321 §4.2.3",
    ),
    rc(
        551,
        "User not local; please try another path",
        "RFC 5321 §4.2.3",
    ),
    rc(
        552,
        "Requested mail action aborted: exceeded storage allocation",
        "RFC 5321 §4.2.3",
    ),
    rc(
        553,
        "Requested action not taken: mailbox name not allowed",
        "RFC 5321 §4.2.3",
    ),
    rc(
        554,
        "Transaction failed (in a greeting: no SMTP service here)",
        "RFC 5321 §4.2.3",
    ),
    rc(
        555,
        "MAIL FROM/RCPT TO parameters not recognized or not implemented",
        "RFC 5321 §4.2.3",
    ),
    rc(556, "Domain does not accept mail", "RFC 7504 §3"),
];

const fn rc(code: u16, meaning: &'static str, rfc: &'static str) -> ReplyCodeInfo {
    ReplyCodeInfo { code, meaning, rfc }
}

/// The entry for a reply code, if the standards define it.
pub fn reply_code(code: u16) -> Option<&'static ReplyCodeInfo> {
    REPLY_CODES.iter().find(|r| r.code == code)
}

/// RFC 5321 §4.2.1: the first digit.
pub fn reply_class(code: u16) -> &'static str {
    match code / 100 {
        2 => "positive completion: the command succeeded",
        3 => "positive intermediate: the server waits for more from the client",
        4 => "transient negative: not done now, trying again later may work",
        5 => "permanent negative: not done; repeating it unchanged will fail again",
        _ => "not a valid SMTP reply class (RFC 5321 allows 2, 3, 4, 5)",
    }
}

/// RFC 5321 §4.2.1: the second digit.
pub fn reply_category(code: u16) -> &'static str {
    match (code / 10) % 10 {
        0 => "syntax",
        1 => "information",
        2 => "connections (the transmission channel)",
        3 => "authentication and accounting",
        4 => "unspecified",
        5 => "mail system",
        _ => "undefined category",
    }
}

/// A one-line description of a reply code: `535: Authentication credentials invalid
/// (RFC 4954 §6)`, falling back to class and category for unlisted codes.
pub fn describe_reply_code(code: u16) -> String {
    match reply_code(code) {
        Some(r) => format!("{code}: {} ({})", r.meaning, r.rfc),
        None => format!(
            "{code}: not a standard code; class {}: {}; category: {}",
            code / 100,
            reply_class(code),
            reply_category(code)
        ),
    }
}

/// One registered enhanced status code: subject, detail and meaning (class is separate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancedInfo {
    /// The subject digit(s) (`7` in `5.7.8`).
    pub subject: u16,
    /// The detail digit(s) (`8` in `5.7.8`).
    pub detail: u16,
    /// The registered meaning.
    pub meaning: &'static str,
    /// Where it is defined.
    pub rfc: &'static str,
}

const fn ec(subject: u16, detail: u16, meaning: &'static str, rfc: &'static str) -> EnhancedInfo {
    EnhancedInfo {
        subject,
        detail,
        meaning,
        rfc,
    }
}

/// Every enhanced status code of RFC 3463 §3.1–§3.8, plus the codes RFC 4954 and later
/// RFCs registered with IANA (RFC 5248 registry) that a submission client can meet.
pub static ENHANCED_CODES: &[EnhancedInfo] = &[
    // §3.1 Other or undefined status
    ec(0, 0, "Other undefined status", "RFC 3463 §3.1"),
    // §3.2 Address status
    ec(1, 0, "Other address status", "RFC 3463 §3.2"),
    ec(1, 1, "Bad destination mailbox address (no such user)", "RFC 3463 §3.2"),
    ec(1, 2, "Bad destination system address (no such domain)", "RFC 3463 §3.2"),
    ec(1, 3, "Bad destination mailbox address syntax", "RFC 3463 §3.2"),
    ec(1, 4, "Destination mailbox address ambiguous", "RFC 3463 §3.2"),
    ec(1, 5, "Destination address valid", "RFC 3463 §3.2"),
    ec(1, 6, "Destination mailbox has moved, no forwarding address", "RFC 3463 §3.2"),
    ec(1, 7, "Bad sender's mailbox address syntax", "RFC 3463 §3.2"),
    ec(1, 8, "Bad sender's system address", "RFC 3463 §3.2"),
    ec(1, 9, "Message relayed to non-compliant mailer", "RFC 3886 §4.3"),
    ec(1, 10, "Recipient address has null MX", "RFC 7505 §4.2"),
    // §3.3 Mailbox status
    ec(2, 0, "Other or undefined mailbox status", "RFC 3463 §3.3"),
    ec(2, 1, "Mailbox disabled, not accepting messages", "RFC 3463 §3.3"),
    ec(2, 2, "Mailbox full", "RFC 3463 §3.3"),
    ec(2, 3, "Message length exceeds administrative limit", "RFC 3463 §3.3"),
    ec(2, 4, "Mailing list expansion problem", "RFC 3463 §3.3"),
    // §3.4 Mail system status
    ec(3, 0, "Other or undefined mail system status", "RFC 3463 §3.4"),
    ec(3, 1, "Mail system full", "RFC 3463 §3.4"),
    ec(3, 2, "System not accepting network messages", "RFC 3463 §3.4"),
    ec(3, 3, "System not capable of selected features", "RFC 3463 §3.4"),
    ec(3, 4, "Message too big for system", "RFC 3463 §3.4"),
    ec(3, 5, "System incorrectly configured", "RFC 3463 §3.4"),
    ec(3, 6, "Requested priority was changed", "RFC 6710 §7"),
    // §3.5 Network and routing status
    ec(4, 0, "Other or undefined network or routing status", "RFC 3463 §3.5"),
    ec(4, 1, "No answer from host", "RFC 3463 §3.5"),
    ec(4, 2, "Bad connection", "RFC 3463 §3.5"),
    ec(4, 3, "Directory server failure", "RFC 3463 §3.5"),
    ec(4, 4, "Unable to route", "RFC 3463 §3.5"),
    ec(4, 5, "Mail system congestion (providers also use it for sending limits)", "RFC 3463 §3.5"),
    ec(4, 6, "Routing loop detected", "RFC 3463 §3.5"),
    ec(4, 7, "Delivery time expired", "RFC 3463 §3.5"),
    // §3.6 Mail delivery protocol status
    ec(5, 0, "Other or undefined protocol status", "RFC 3463 §3.6"),
    ec(5, 1, "Invalid command", "RFC 3463 §3.6"),
    ec(5, 2, "Syntax error", "RFC 3463 §3.6"),
    ec(5, 3, "Too many recipients", "RFC 3463 §3.6"),
    ec(5, 4, "Invalid command arguments", "RFC 3463 §3.6"),
    ec(5, 5, "Wrong protocol version", "RFC 3463 §3.6"),
    ec(5, 6, "Authentication exchange line is too long", "RFC 4954 §4"),
    // §3.7 Message content or media status
    ec(6, 0, "Other or undefined media error", "RFC 3463 §3.7"),
    ec(6, 1, "Media not supported", "RFC 3463 §3.7"),
    ec(6, 2, "Conversion required and prohibited", "RFC 3463 §3.7"),
    ec(6, 3, "Conversion required but not supported", "RFC 3463 §3.7"),
    ec(6, 4, "Conversion with loss performed", "RFC 3463 §3.7"),
    ec(6, 5, "Conversion failed", "RFC 3463 §3.7"),
    ec(6, 6, "Message content not available", "RFC 4468 §7"),
    ec(6, 7, "Non-ASCII addresses not permitted for that sender/recipient", "RFC 6531 §3.7.5"),
    ec(6, 8, "UTF-8 string reply is required, but not permitted by the SMTP client", "RFC 6531 §3.7.4.1"),
    ec(6, 9, "UTF-8 header message cannot be transferred to one or more recipients", "RFC 6531 §3.7.5"),
    // §3.8 Security or policy status
    ec(7, 0, "Other or undefined security status (also: authentication required, or must STARTTLS first)", "RFC 3463 §3.8, RFC 4954 §6"),
    ec(7, 1, "Delivery not authorized, message refused", "RFC 3463 §3.8"),
    ec(7, 2, "Mailing list expansion prohibited", "RFC 3463 §3.8"),
    ec(7, 3, "Security conversion required but not possible", "RFC 3463 §3.8"),
    ec(7, 4, "Security features not supported", "RFC 3463 §3.8"),
    ec(7, 5, "Cryptographic failure", "RFC 3463 §3.8"),
    ec(7, 6, "Cryptographic algorithm not supported", "RFC 3463 §3.8"),
    ec(7, 7, "Message integrity failure", "RFC 3463 §3.8"),
    ec(7, 8, "Authentication credentials invalid", "RFC 4954 §6"),
    ec(7, 9, "Authentication mechanism is too weak", "RFC 4954 §6"),
    ec(7, 10, "Encryption needed", "RFC 5248 §2.4"),
    ec(7, 11, "Encryption required for requested authentication mechanism", "RFC 4954 §6"),
    ec(7, 12, "A password transition is needed", "RFC 4954 §6"),
    ec(7, 13, "User account disabled", "RFC 5248 §2.4"),
    ec(7, 14, "Trust relationship required", "RFC 5248 §2.4"),
    ec(7, 15, "Priority level is too low", "RFC 6710 §7"),
    ec(7, 16, "Message is too big for the specified priority", "RFC 6710 §7"),
    ec(7, 17, "Mailbox owner has changed", "RFC 7293 §10"),
    ec(7, 18, "Domain owner has changed", "RFC 7293 §10"),
    ec(7, 19, "RRVS test cannot be completed", "RFC 7293 §10"),
    ec(7, 20, "No passing DKIM signature found", "RFC 7372 §3.1"),
    ec(7, 21, "No acceptable DKIM signature found", "RFC 7372 §3.1"),
    ec(7, 22, "No valid author-matched DKIM signature found", "RFC 7372 §3.1"),
    ec(7, 23, "SPF validation failed", "RFC 7372 §3.2"),
    ec(7, 24, "SPF validation error", "RFC 7372 §3.2"),
    ec(7, 25, "Reverse DNS validation failed", "RFC 7372 §3.3"),
    ec(7, 26, "Multiple authentication checks failed", "RFC 7372 §3.4"),
    ec(7, 27, "Sender address has null MX", "RFC 7505 §4.2"),
];

/// RFC 3463 §3.1: the class digit.
pub fn enhanced_class(class: u8) -> &'static str {
    match class {
        2 => "Success",
        4 => "Persistent transient failure: the condition may clear; trying later may work",
        5 => "Permanent failure: something must change before it can work",
        _ => "not a valid class (RFC 3463 allows 2, 4, 5)",
    }
}

/// RFC 3463 §3.1: the subject digit(s).
pub fn enhanced_subject(subject: u16) -> &'static str {
    match subject {
        0 => "Other or undefined status",
        1 => "Addressing status (the sender or recipient address)",
        2 => "Mailbox status (the recipient's mailbox)",
        3 => "Mail system status (the receiving server)",
        4 => "Network and routing status",
        5 => "Mail delivery protocol status (the SMTP conversation)",
        6 => "Message content or media status",
        7 => "Security or policy status (authentication, TLS, policy)",
        _ => "unregistered subject",
    }
}

/// The registered meaning of `X.subject.detail`, if any.
pub fn enhanced_detail(subject: u16, detail: u16) -> Option<&'static EnhancedInfo> {
    ENHANCED_CODES
        .iter()
        .find(|e| e.subject == subject && e.detail == detail)
}

/// A multi-line description of an enhanced code: class, subject, detail.
pub fn describe_enhanced(code: EnhancedCode) -> String {
    let detail = match enhanced_detail(code.subject, code.detail) {
        Some(e) => format!("{} ({})", e.meaning, e.rfc),
        None => format!(
            "X.{}.{} is not registered with IANA: a vendor-specific detail; read the reply text",
            code.subject, code.detail
        ),
    };
    format!(
        "{code}\n  class   {}: {}\n  subject {}: {}\n  detail  {}: {}",
        code.class,
        enhanced_class(code.class),
        code.subject,
        enhanced_subject(code.subject),
        code.detail,
        detail
    )
}

/// A one-line description of an enhanced code, for annotations: `5.7.8: Authentication
/// credentials invalid`.
pub fn describe_enhanced_short(code: EnhancedCode) -> String {
    match enhanced_detail(code.subject, code.detail) {
        Some(e) => format!("{code}: {}", e.meaning),
        None => format!(
            "{code}: {} ({}; detail {} not registered)",
            enhanced_subject(code.subject),
            if code.class == 2 {
                "success"
            } else if code.class == 4 {
                "temporary"
            } else {
                "permanent"
            },
            code.detail
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_codes_are_described() {
        assert!(describe_reply_code(535).contains("credentials invalid"));
        assert!(describe_reply_code(535).contains("RFC 4954"));
        assert!(describe_reply_code(421).contains("not available"));
        for c in [
            211, 214, 220, 221, 250, 251, 252, 354, 421, 450, 451, 452, 455, 500, 501, 502, 503,
            504, 550, 551, 552, 553, 554, 555, 432, 454, 530, 534, 538, 235, 334,
        ] {
            assert!(reply_code(c).is_some(), "{c}");
        }
        // Unlisted codes still say something useful.
        assert!(describe_reply_code(599).contains("permanent"));
    }

    #[test]
    fn codes_are_unique_and_sorted_enough() {
        for (i, a) in REPLY_CODES.iter().enumerate() {
            assert!(REPLY_CODES[i + 1..].iter().all(|b| b.code != a.code));
        }
        for (i, a) in ENHANCED_CODES.iter().enumerate() {
            assert!(ENHANCED_CODES[i + 1..]
                .iter()
                .all(|b| (b.subject, b.detail) != (a.subject, a.detail)));
        }
    }

    #[test]
    fn enhanced_codes_are_described() {
        let d = describe_enhanced(EnhancedCode::new(5, 7, 8));
        assert!(d.contains("Permanent failure"), "{d}");
        assert!(d.contains("Security or policy"), "{d}");
        assert!(d.contains("Authentication credentials invalid"), "{d}");
        for (s, d) in [
            (7, 9),
            (7, 12),
            (7, 11),
            (7, 14),
            (7, 0),
            (5, 6),
            (3, 4),
            (2, 3),
            (4, 5),
        ] {
            assert!(enhanced_detail(s, d).is_some(), "{s}.{d}");
        }
        let unknown = describe_enhanced(EnhancedCode::new(5, 7, 139));
        assert!(unknown.contains("not registered"), "{unknown}");
        assert!(describe_enhanced_short(EnhancedCode::new(4, 7, 0)).starts_with("4.7.0"));
    }
}
