//! SASL mechanisms for SMTP AUTH (RFC 4954): PLAIN (RFC 4616), LOGIN, XOAUTH2 and
//! OAUTHBEARER (RFC 7628).
//!
//! Each function returns the bytes for the wire *and* the redacted text the transcript
//! records, so the redaction happens where the secret is encoded (DESIGN habit 5).

use crate::secret::Secret;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

/// RFC 4954 §4: a command line, including the initial response, must fit in 512 octets
/// (CRLF included); if not, the client sends `AUTH PLAIN` alone and answers the `334`.
pub const MAX_AUTH_LINE: usize = 512;

/// A SASL mechanism smtprobe can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616.
    Plain,
    /// The de-facto LOGIN mechanism (draft-murchison-sasl-login).
    Login,
    /// Google/Microsoft XOAUTH2 bearer token.
    XOAuth2,
    /// RFC 7628 OAUTHBEARER.
    OAuthBearer,
}

impl Mechanism {
    /// The name on the wire and in EHLO.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// Bytes for the wire and the line the transcript records in their place.
pub struct Encoded {
    /// The exact bytes to send, CRLF included. Contains the secret: never log it.
    pub wire: Vec<u8>,
    /// What the transcript shows instead.
    pub shown: String,
}

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoded")
            .field("shown", &self.shown)
            .finish_non_exhaustive()
    }
}

fn line(bytes: String) -> Vec<u8> {
    let mut v = bytes.into_bytes();
    v.extend_from_slice(b"\r\n");
    v
}

/// The PLAIN message `\0user\0password` in base64 (authorization identity empty).
fn plain_b64(user: &str, password: &Secret) -> String {
    let mut msg = Vec::with_capacity(user.len() + password.expose().len() + 2);
    msg.push(0);
    msg.extend_from_slice(user.as_bytes());
    msg.push(0);
    msg.extend_from_slice(password.expose().as_bytes());
    let out = B64.encode(&msg);
    msg.fill(0);
    out
}

/// `AUTH PLAIN <initial response>` when it fits [`MAX_AUTH_LINE`], else `None` (send
/// [`plain_command_without_ir`] and answer the 334 with [`plain_response`]).
pub fn plain_initial(user: &str, password: &Secret) -> Option<Encoded> {
    let b64 = plain_b64(user, password);
    let text = format!("AUTH PLAIN {b64}");
    (text.len() + 2 <= MAX_AUTH_LINE).then(|| Encoded {
        wire: line(text),
        shown: format!("AUTH PLAIN <redacted: user {user}>"),
    })
}

/// `AUTH PLAIN` with no initial response.
pub fn plain_command_without_ir() -> Encoded {
    Encoded {
        wire: line("AUTH PLAIN".into()),
        shown: "AUTH PLAIN".into(),
    }
}

/// The PLAIN credentials as a response line to a `334` challenge.
pub fn plain_response(user: &str, password: &Secret) -> Encoded {
    Encoded {
        wire: line(plain_b64(user, password)),
        shown: format!("<redacted: PLAIN credentials for user {user}>"),
    }
}

/// `AUTH LOGIN` (the user name is sent at the first 334, not as an initial response, to
/// work with every server).
pub fn login_command() -> Encoded {
    Encoded {
        wire: line("AUTH LOGIN".into()),
        shown: "AUTH LOGIN".into(),
    }
}

/// LOGIN step 1: the user name. The user name is not a secret, but the transcript marks
/// the line so a reader knows what it carried without the base64.
pub fn login_username(user: &str) -> Encoded {
    Encoded {
        wire: line(B64.encode(user.as_bytes())),
        shown: "<redacted username>".into(),
    }
}

/// LOGIN step 2: the password.
pub fn login_password(password: &Secret) -> Encoded {
    Encoded {
        wire: line(B64.encode(password.expose().as_bytes())),
        shown: "<redacted password>".into(),
    }
}

/// `AUTH XOAUTH2 <base64("user=" user "\x01auth=Bearer " token "\x01\x01")>`.
pub fn xoauth2_initial(user: &str, token: &Secret) -> Encoded {
    let raw = format!("user={user}\x01auth=Bearer {}\x01\x01", token.expose());
    Encoded {
        wire: line(format!("AUTH XOAUTH2 {}", B64.encode(raw.as_bytes()))),
        shown: format!("AUTH XOAUTH2 <redacted: token for user {user}>"),
    }
}

/// `AUTH OAUTHBEARER <base64(gs2 header, auth=Bearer token)>` (RFC 7628 §3.1).
pub fn oauthbearer_initial(user: &str, token: &Secret) -> Encoded {
    let raw = format!(
        "n,a={},\x01auth=Bearer {}\x01\x01",
        gs2_escape(user),
        token.expose()
    );
    Encoded {
        wire: line(format!("AUTH OAUTHBEARER {}", B64.encode(raw.as_bytes()))),
        shown: format!("AUTH OAUTHBEARER <redacted: token for user {user}>"),
    }
}

fn gs2_escape(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

/// The client's cancel line (RFC 4954 §4: `*` aborts the exchange).
pub fn cancel() -> Encoded {
    Encoded {
        wire: b"*\r\n".to_vec(),
        shown: "*".into(),
    }
}

/// An empty response line (XOAUTH2/OAUTHBEARER: the reply to an error challenge, after
/// which the server sends its final failure; RFC 7628 §3.2.3 uses `\x01`).
pub fn empty_response() -> Encoded {
    Encoded {
        wire: b"\r\n".to_vec(),
        shown: String::new(),
    }
}

/// The OAUTHBEARER error-challenge acknowledgement (`AQ==`, base64 of `\x01`).
pub fn oauthbearer_ack() -> Encoded {
    Encoded {
        wire: b"AQ==\r\n".to_vec(),
        shown: "AQ==".into(),
    }
}

/// Decodes a 334 challenge's base64 text. `None` when it is not valid base64.
/// An empty challenge decodes to an empty vector.
pub fn decode_challenge(text: &[u8]) -> Option<Vec<u8>> {
    let t: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    B64.decode(&t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_matches_rfc4616_and_is_redacted() {
        let pw = Secret::new("tanstaaftanstaaf");
        let e = plain_initial("tim", &pw).unwrap();
        // RFC 4616 §4 example: "\0tim\0tanstaaftanstaaf"
        assert_eq!(
            e.wire,
            b"AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n".to_vec()
        );
        assert_eq!(e.shown, "AUTH PLAIN <redacted: user tim>");
        assert!(!format!("{e:?}").contains("AHRpbQ"));
    }

    #[test]
    fn plain_too_long_for_one_line_has_no_initial_response() {
        let pw = Secret::new("p".repeat(400));
        assert!(plain_initial("user@example.org", &pw).is_none());
        assert_eq!(
            plain_response("u", &Secret::new("p")).wire,
            b"AHUAcA==\r\n".to_vec()
        );
    }

    #[test]
    fn login_steps_and_challenges() {
        assert_eq!(login_username("you@gmail.com").shown, "<redacted username>");
        assert_eq!(login_password(&Secret::new("x")).wire, b"eA==\r\n".to_vec());
        assert_eq!(
            decode_challenge(b"VXNlcm5hbWU6").unwrap(),
            b"Username:".to_vec()
        );
        assert_eq!(decode_challenge(b"").unwrap(), Vec::<u8>::new());
        assert!(decode_challenge(b"not base64!").is_none());
    }

    #[test]
    fn xoauth2_format() {
        let e = xoauth2_initial("a@b", &Secret::new("s3cr3t"));
        let b64 = std::str::from_utf8(&e.wire[13..e.wire.len() - 2]).unwrap();
        assert_eq!(
            B64.decode(b64).unwrap(),
            b"user=a@b\x01auth=Bearer s3cr3t\x01\x01".to_vec()
        );
        assert!(!e.shown.contains("s3cr3t"));
    }
}
