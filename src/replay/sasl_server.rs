//! The server's half of SASL (RFC 4954 §4) as far as the replay server needs it: the
//! challenges it sends, and the user name inside a response (to pick a scenario and for
//! `# require: user`). Passwords and tokens are never verified, kept or shown: the
//! decoded bytes are wiped as soon as the name is out.

use crate::protocol::sasl::decode_challenge;

/// `334 VXNlcm5hbWU6` ("Username:"), the LOGIN mechanism's first challenge.
pub(crate) const LOGIN_USERNAME: &str = "334 VXNlcm5hbWU6";
/// `334 UGFzc3dvcmQ6` ("Password:").
pub(crate) const LOGIN_PASSWORD: &str = "334 UGFzc3dvcmQ6";
/// The empty challenge (`334 ` with its space, RFC 4954 §4) for a mechanism started
/// without an initial response.
pub(crate) const EMPTY: &str = "334 ";
/// RFC 7628 §3.2.2: an OAUTHBEARER/XOAUTH2 failure is first sent as a challenge
/// carrying a JSON error (`{"status":"invalid_token","schemes":"bearer"}`); the client
/// answers it, then gets the final refusal.
pub(crate) const OAUTH_ERROR: &str =
    "334 eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NoZW1lcyI6ImJlYXJlciJ9";

/// The CRAM-MD5 challenge (RFC 2195 §2): a msg-id-like string in base64. The server
/// never checks the digest, so a fixed one is enough.
pub(crate) fn cram_md5_challenge(host: &str) -> String {
    use base64::Engine as _;
    let text = format!("<1896.697170952@{host}>");
    format!(
        "334 {}",
        base64::engine::general_purpose::STANDARD.encode(text)
    )
}

/// A client response decoded from base64, or why not. `*` cancels (RFC 4954 §4).
pub(crate) enum Response {
    /// The exchange is cancelled.
    Cancel,
    /// Not base64.
    Undecodable,
    /// The user name it names, if the mechanism carries one here.
    Decoded(Option<String>),
}

/// What part of an exchange a response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// PLAIN's `authzid \0 authcid \0 passwd` (RFC 4616 §2).
    Plain,
    /// LOGIN's user name line.
    LoginUser,
    /// A response that names no user (LOGIN password, CRAM-MD5, an error
    /// acknowledgement, an unknown mechanism).
    Anonymous,
    /// XOAUTH2's `user=NAME ^A auth=Bearer TOKEN ^A ^A`.
    XOAuth2,
    /// RFC 7628 §3.1: `n,a=NAME,^Aauth=Bearer TOKEN^A^A`.
    OAuthBearer,
}

/// Reads one response line (without CRLF).
pub(crate) fn read(line: &[u8], part: Part) -> Response {
    if line == b"*" {
        return Response::Cancel;
    }
    // RFC 4954 §4: `=` is an empty initial response.
    let decoded = if line == b"=" {
        Some(Vec::new())
    } else {
        decode_challenge(line)
    };
    let Some(mut raw) = decoded else {
        return Response::Undecodable;
    };
    let name = match part {
        Part::Plain => raw.split(|&b| b == 0).nth(1).map(<[u8]>::to_vec),
        Part::LoginUser => Some(raw.clone()),
        Part::Anonymous => None,
        Part::XOAuth2 => raw
            .split(|&b| b == 1)
            .find_map(|kv| kv.strip_prefix(b"user="))
            .map(<[u8]>::to_vec),
        Part::OAuthBearer => raw
            .split(|&b| b == b',' || b == 1)
            .find_map(|kv| kv.strip_prefix(b"a="))
            .map(gs2_unescape),
    };
    raw.fill(0);
    Response::Decoded(name.map(|n| String::from_utf8_lossy(&n).into_owned()))
}

/// RFC 5801 §4: `=2C` is `,` and `=3D` is `=` in a gs2 authzid.
fn gs2_unescape(s: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(s)
        .replace("=2C", ",")
        .replace("=3D", "=")
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::sasl;
    use crate::secret::Secret;

    fn line(e: sasl::Encoded) -> Vec<u8> {
        let mut w = e.wire;
        w.truncate(w.len() - 2);
        w
    }

    #[test]
    fn user_names_from_every_mechanism() {
        let pw = Secret::new("pw");
        let name = |l: &[u8], p| match read(l, p) {
            Response::Decoded(n) => n,
            _ => panic!("not decoded"),
        };
        let plain = line(sasl::plain_response("you@example.com", &pw));
        assert_eq!(
            name(&plain, Part::Plain).as_deref(),
            Some("you@example.com")
        );
        let user = line(sasl::login_username("me"));
        assert_eq!(name(&user, Part::LoginUser).as_deref(), Some("me"));
        let x = line(sasl::xoauth2_initial("a@b", &pw));
        let x = x.rsplit(|&b| b == b' ').next().unwrap();
        assert_eq!(name(x, Part::XOAuth2).as_deref(), Some("a@b"));
        let o = line(sasl::oauthbearer_initial("c,d@e", &pw));
        let o = o.rsplit(|&b| b == b' ').next().unwrap();
        assert_eq!(name(o, Part::OAuthBearer).as_deref(), Some("c,d@e"));
        assert!(matches!(read(b"*", Part::Plain), Response::Cancel));
        assert!(matches!(
            read(b"not base64!", Part::Plain),
            Response::Undecodable
        ));
        assert!(matches!(
            read(b"=", Part::Anonymous),
            Response::Decoded(None)
        ));
    }
}
