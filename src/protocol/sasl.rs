//! SASL mechanisms for SMTP AUTH (RFC 4954): PLAIN (RFC 4616), LOGIN, XOAUTH2,
//! OAUTHBEARER (RFC 7628), CRAM-MD5 (RFC 2195), SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802,
//! RFC 7677) and EXTERNAL (RFC 4422 appendix A).
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
    /// RFC 2195 challenge-response with HMAC-MD5.
    CramMd5,
    /// RFC 5802 SCRAM with SHA-1 (mutual: the server proves it knows the password).
    ScramSha1,
    /// RFC 7677 SCRAM with SHA-256.
    ScramSha256,
    /// RFC 4422 appendix A: the identity established outside SASL (the TLS client
    /// certificate).
    External,
}

impl Mechanism {
    /// Every mechanism, for looking one up by name.
    pub const ALL: [Mechanism; 8] = [
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::XOAuth2,
        Mechanism::OAuthBearer,
        Mechanism::CramMd5,
        Mechanism::ScramSha1,
        Mechanism::ScramSha256,
        Mechanism::External,
    ];

    /// The mechanism a name stands for (`AUTH <name>`, case-insensitive, RFC 4422 §3.1);
    /// `None` for one smtprobe does not know.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// The name on the wire and in EHLO.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::External => "EXTERNAL",
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

/// A 334 challenge during an OAuth exchange, decoded. Google and Microsoft (XOAUTH2) and
/// RFC 7628 §3.2.2 (OAUTHBEARER) send a base64 JSON object with `status`, `scope` and
/// `schemes` instead of a final failure; the client must answer before the failure
/// follows. The one place that decodes it: the session, the diagnosis and the annotator
/// all read it from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthChallenge {
    /// The decoded challenge, escaped for display; the raw text, escaped, when it is not
    /// valid base64.
    pub shown: String,
    /// True when the text was valid base64.
    pub base64: bool,
    /// The JSON `status` (`"400"`), when the challenge is an OAuth error object.
    pub status: Option<String>,
    /// The JSON `scope` the token needs, when given.
    pub scope: Option<String>,
    /// The JSON `schemes` (`Bearer`), when given.
    pub schemes: Option<String>,
}

impl OAuthChallenge {
    /// Decodes a 334 challenge's text (whitespace ignored, as [`decode_challenge`]).
    pub fn decode(text: &[u8]) -> OAuthChallenge {
        let Some(decoded) = decode_challenge(text) else {
            return OAuthChallenge {
                shown: crate::protocol::escape_bytes(text),
                base64: false,
                status: None,
                scope: None,
                schemes: None,
            };
        };
        let json = serde_json::from_slice::<serde_json::Value>(&decoded).ok();
        let field = |k: &str| {
            json.as_ref()?.get(k).map(|v| match v.as_str() {
                Some(s) => s.to_owned(),
                None => v.to_string(),
            })
        };
        OAuthChallenge {
            shown: crate::protocol::escape_bytes(&decoded),
            base64: true,
            status: field("status"),
            scope: field("scope"),
            schemes: field("schemes"),
        }
    }

    /// `OAuth error status 400, required scope …, schemes …`, escaped; `None` when the
    /// challenge is not an OAuth error object.
    pub fn summary(&self) -> Option<String> {
        let mut s = format!("OAuth error status {}", self.status.as_ref()?);
        if let Some(scope) = &self.scope {
            s.push_str(&format!(", required scope {scope}"));
        }
        if let Some(schemes) = &self.schemes {
            s.push_str(&format!(", schemes {schemes}"));
        }
        Some(crate::protocol::escape_str(&s))
    }
}

/// `AUTH <MECH>` with no initial response (CRAM-MD5: the server speaks first,
/// RFC 2195 §2).
pub fn bare_command(mech: Mechanism) -> Encoded {
    Encoded {
        wire: line(format!("AUTH {}", mech.name())),
        shown: format!("AUTH {}", mech.name()),
    }
}

/// The CRAM-MD5 response to the server's challenge (RFC 2195 §2): base64 of
/// `user SP hex(HMAC-MD5(password, challenge))`.
pub fn cram_md5_response(user: &str, password: &Secret, challenge: &[u8]) -> Encoded {
    use hmac::{Hmac, Mac};
    // HMAC accepts a key of any length (RFC 2104 §2), so `new_from_slice` cannot fail.
    let mut mac = <Hmac<md5::Md5> as Mac>::new_from_slice(password.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(challenge);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Encoded {
        wire: line(B64.encode(format!("{user} {hex}"))),
        shown: format!("<redacted: CRAM-MD5 response for user {user}>"),
    }
}

/// `AUTH EXTERNAL` with the authorization identity as initial response; `=` is the
/// empty initial response (RFC 4954 §4): "derive my identity from the certificate".
pub fn external_initial(authzid: &str) -> Encoded {
    let ir = if authzid.is_empty() {
        "=".to_owned()
    } else {
        B64.encode(authzid.as_bytes())
    };
    let text = format!("AUTH EXTERNAL {ir}");
    Encoded {
        wire: line(text.clone()),
        shown: text,
    }
}

/// The hash of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    /// SCRAM-SHA-1 (RFC 5802).
    Sha1,
    /// SCRAM-SHA-256 (RFC 7677).
    Sha256,
}

impl ScramHash {
    fn hmac_alg(self) -> ring::hmac::Algorithm {
        match self {
            ScramHash::Sha1 => ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            ScramHash::Sha256 => ring::hmac::HMAC_SHA256,
        }
    }
    fn pbkdf2_alg(self) -> ring::pbkdf2::Algorithm {
        match self {
            ScramHash::Sha1 => ring::pbkdf2::PBKDF2_HMAC_SHA1,
            ScramHash::Sha256 => ring::pbkdf2::PBKDF2_HMAC_SHA256,
        }
    }
    fn digest_alg(self) -> &'static ring::digest::Algorithm {
        match self {
            ScramHash::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            ScramHash::Sha256 => &ring::digest::SHA256,
        }
    }
    fn len(self) -> usize {
        match self {
            ScramHash::Sha1 => 20,
            ScramHash::Sha256 => 32,
        }
    }
    /// The mechanism name.
    pub fn mechanism(self) -> Mechanism {
        match self {
            ScramHash::Sha1 => Mechanism::ScramSha1,
            ScramHash::Sha256 => Mechanism::ScramSha256,
        }
    }
}

/// The most PBKDF2 iterations smtprobe computes for a server: a hostile server could
/// otherwise ask for 2^32 and hold the check for hours. RFC 7677 §4 asks for at least
/// 4096; current guidance for PBKDF2-HMAC-SHA256 is about 600 000.
pub const SCRAM_MAX_ITERATIONS: u32 = 1_000_000;

/// What went wrong in a SCRAM exchange (RFC 5802 §5, §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramError {
    /// The server-first-message is not valid (the text says why).
    BadServerFirst(&'static str),
    /// The server's nonce does not extend ours: a broken server or a replayed exchange.
    NonceMismatch,
    /// The server asked for more iterations than [`SCRAM_MAX_ITERATIONS`].
    TooManyIterations(u32),
    /// The server sent `e=` (RFC 5802 §7 server-error).
    ServerError(String),
    /// The server-final-message is not `v=<base64>`.
    BadServerFinal,
    /// `v=` does not match: the server does not know the password (or is not the
    /// server, RFC 5802 §9: a man in the middle).
    SignatureMismatch,
}

impl std::fmt::Display for ScramError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScramError::BadServerFirst(why) => write!(f, "the server-first-message {why}"),
            ScramError::NonceMismatch => {
                f.write_str("the server's nonce does not start with the client's nonce")
            }
            ScramError::TooManyIterations(i) => write!(
                f,
                "the server asks for {i} PBKDF2 iterations (more than {SCRAM_MAX_ITERATIONS})"
            ),
            ScramError::ServerError(e) => write!(f, "the server reported the SCRAM error {e}"),
            ScramError::BadServerFinal => {
                f.write_str("the server-final-message is not v=<signature>")
            }
            ScramError::SignatureMismatch => {
                f.write_str("the server's signature does not verify: it does not know the password")
            }
        }
    }
}

/// A SCRAM exchange after the client-first-message (RFC 5802 §5.1): waiting for the
/// server-first-message.
pub struct ScramStart {
    hash: ScramHash,
    user: String,
    nonce: String,
    client_first_bare: String,
}

impl std::fmt::Debug for ScramStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramStart")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// A SCRAM exchange after the client-final-message: the expected server signature
/// (derived from the password, so never formatted).
pub struct ScramProof {
    server_signature: Vec<u8>,
}

impl std::fmt::Debug for ScramProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScramProof(<redacted>)")
    }
}

impl Drop for ScramProof {
    fn drop(&mut self) {
        self.server_signature.fill(0);
    }
}

/// `AUTH SCRAM-SHA-x <client-first-message>` (RFC 5802 §5.1, no channel binding:
/// gs2 header `n,,`). `nonce` must be fresh printable randomness without `,`.
pub fn scram_initial(hash: ScramHash, user: &str, nonce: &str) -> (Encoded, ScramStart) {
    let client_first_bare = format!("n={},r={nonce}", gs2_escape(user));
    let msg = format!("n,,{client_first_bare}");
    let name = hash.mechanism().name();
    (
        Encoded {
            wire: line(format!("AUTH {name} {}", B64.encode(msg.as_bytes()))),
            // The client-first-message holds only the user name and a nonce.
            shown: format!("AUTH {name} <client-first: user {user}>"),
        },
        ScramStart {
            hash,
            user: user.to_owned(),
            nonce: nonce.to_owned(),
            client_first_bare,
        },
    )
}

fn attr<'a>(parts: &[&'a str], key: char) -> Option<&'a str> {
    parts.iter().find_map(|p| {
        let mut c = p.chars();
        (c.next() == Some(key) && c.next() == Some('=')).then(|| &p[2..])
    })
}

impl ScramStart {
    /// Answers the server-first-message with the client-final-message (RFC 5802 §3).
    pub fn respond(
        &self,
        server_first: &[u8],
        password: &Secret,
    ) -> Result<(Encoded, ScramProof), ScramError> {
        let text = std::str::from_utf8(server_first)
            .map_err(|_| ScramError::BadServerFirst("is not UTF-8"))?;
        let parts: Vec<&str> = text.split(',').collect();
        if let Some(e) = attr(&parts, 'e') {
            return Err(ScramError::ServerError(crate::protocol::escape_str(e)));
        }
        // RFC 5802 §5.1: a mandatory extension (m=) we do not understand ends it.
        if parts.first().is_some_and(|p| p.starts_with("m=")) {
            return Err(ScramError::BadServerFirst(
                "asks for a mandatory extension (m=)",
            ));
        }
        let nonce = attr(&parts, 'r').ok_or(ScramError::BadServerFirst("has no nonce (r=)"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() <= self.nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        let salt = attr(&parts, 's')
            .and_then(|s| B64.decode(s).ok())
            .filter(|s| !s.is_empty())
            .ok_or(ScramError::BadServerFirst("has no valid salt (s=)"))?;
        let iterations: u32 = attr(&parts, 'i')
            .and_then(|i| i.parse().ok())
            .filter(|&i| i > 0)
            .ok_or(ScramError::BadServerFirst(
                "has no valid iteration count (i=)",
            ))?;
        if iterations > SCRAM_MAX_ITERATIONS {
            return Err(ScramError::TooManyIterations(iterations));
        }
        let hash = self.hash;
        let mut salted = vec![0u8; hash.len()];
        // RFC 5802 §2.2 Hi() is PBKDF2 with HMAC as the PRF. The password is used as
        // UTF-8 without SASLprep (RFC 4013) mapping: identical for ASCII passwords.
        ring::pbkdf2::derive(
            hash.pbkdf2_alg(),
            std::num::NonZeroU32::new(iterations).unwrap_or(std::num::NonZeroU32::MIN),
            &salt,
            password.expose().as_bytes(),
            &mut salted,
        );
        let key = ring::hmac::Key::new(hash.hmac_alg(), &salted);
        salted.fill(0);
        let client_key = ring::hmac::sign(&key, b"Client Key");
        let stored_key = ring::digest::digest(hash.digest_alg(), client_key.as_ref());
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let client_sig = ring::hmac::sign(
            &ring::hmac::Key::new(hash.hmac_alg(), stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(client_sig.as_ref())
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = ring::hmac::sign(&key, b"Server Key");
        let server_signature = ring::hmac::sign(
            &ring::hmac::Key::new(hash.hmac_alg(), server_key.as_ref()),
            auth_message.as_bytes(),
        )
        .as_ref()
        .to_vec();
        let msg = format!("{without_proof},p={}", B64.encode(&proof));
        Ok((
            Encoded {
                wire: line(B64.encode(msg.as_bytes())),
                shown: format!("<redacted: SCRAM client proof for user {}>", self.user),
            },
            ScramProof { server_signature },
        ))
    }
}

impl ScramProof {
    /// Verifies the server-final-message `v=<ServerSignature>` (RFC 5802 §3: the client
    /// authenticates the server).
    pub fn verify(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let text = std::str::from_utf8(server_final).map_err(|_| ScramError::BadServerFinal)?;
        let parts: Vec<&str> = text.split(',').collect();
        if let Some(e) = attr(&parts, 'e') {
            return Err(ScramError::ServerError(crate::protocol::escape_str(e)));
        }
        let v = attr(&parts, 'v')
            .and_then(|v| B64.decode(v).ok())
            .ok_or(ScramError::BadServerFinal)?;
        // Constant time: the comparison must not tell an attacker how much matched.
        let same = v.len() == self.server_signature.len()
            && v.iter()
                .zip(&self.server_signature)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same {
            Ok(())
        } else {
            Err(ScramError::SignatureMismatch)
        }
    }
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
    #[test]
    fn cram_md5_matches_rfc2195_example() {
        // RFC 2195 §2.
        let e = cram_md5_response(
            "tim",
            &Secret::new("tanstaaftanstaaf"),
            b"<1896.697170952@postoffice.reston.mci.net>",
        );
        assert_eq!(
            e.wire,
            b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n".to_vec()
        );
        assert!(!e.shown.contains("dGlt") && !e.shown.contains("b913"));
    }

    fn scram_vector(hash: ScramHash, nonce: &str, server_first: &str, final_: &str, v: &str) {
        let (first, start) = scram_initial(hash, "user", nonce);
        let name = hash.mechanism().name();
        let ir = B64.encode(format!("n,,n=user,r={nonce}"));
        assert_eq!(first.wire, format!("AUTH {name} {ir}\r\n").into_bytes());
        let (fin, proof) = start
            .respond(server_first.as_bytes(), &Secret::new("pencil"))
            .unwrap();
        assert_eq!(fin.wire, format!("{}\r\n", B64.encode(final_)).into_bytes());
        assert!(!fin.shown.contains("p="));
        assert_eq!(proof.verify(v.as_bytes()), Ok(()));
        assert_eq!(
            proof.verify(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            Err(ScramError::SignatureMismatch)
        );
        assert!(!format!("{proof:?}{start:?}").contains("pencil"));
    }

    #[test]
    fn scram_sha1_matches_rfc5802_example() {
        // RFC 5802 §5.
        scram_vector(
            ScramHash::Sha1,
            "fyko+d2lbbFgONRv9qkxdawL",
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        );
    }

    #[test]
    fn scram_sha256_matches_rfc7677_example() {
        // RFC 7677 §3.
        scram_vector(
            ScramHash::Sha256,
            "rOprNGfwEbeRWgbNEkqO",
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        );
    }

    #[test]
    fn scram_refuses_hostile_server_first_messages() {
        let (_, start) = scram_initial(ScramHash::Sha256, "u", "abc");
        let pw = Secret::new("p");
        let err = |m: &str| start.respond(m.as_bytes(), &pw).unwrap_err();
        assert_eq!(err("r=xyz123,s=QSXC,i=4096"), ScramError::NonceMismatch);
        assert_eq!(err("r=abc,s=QSXC,i=4096"), ScramError::NonceMismatch);
        assert_eq!(
            err("r=abcd,s=QSXC,i=4294967295"),
            ScramError::TooManyIterations(4294967295)
        );
        assert!(matches!(err("r=abcd,i=1"), ScramError::BadServerFirst(_)));
        assert!(matches!(
            err("r=abcd,s=QSXC,i=0"),
            ScramError::BadServerFirst(_)
        ));
        assert!(matches!(
            err("m=x,r=abcd,s=QSXC,i=1"),
            ScramError::BadServerFirst(_)
        ));
        assert_eq!(
            err("e=unknown-user"),
            ScramError::ServerError("unknown-user".into())
        );
    }

    #[test]
    fn external_initial_response() {
        assert_eq!(external_initial("").wire, b"AUTH EXTERNAL =\r\n".to_vec());
        assert_eq!(
            external_initial("tim").wire,
            b"AUTH EXTERNAL dGlt\r\n".to_vec()
        );
    }
}
