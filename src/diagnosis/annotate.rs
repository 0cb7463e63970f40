//! Plain-language notes for transcript lines: the teaching view.
//!
//! An SMTP line often means something only in context (a `334` after `AUTH LOGIN` is a
//! base64 prompt; `250-PIPELINING` is a capability only inside an EHLO reply), so the
//! [`Annotator`] remembers the previous command and whether a multi-line reply is open.
//! Lines arrive already redacted (see [`crate::transcript`]); notes never need secrets.

use super::{providers, status};
use crate::protocol::{reply, sasl, Command, EnhancedCode, Extension, Mechanism};
use crate::transcript::{Direction, Entry};

/// Annotates one line without context (a fresh [`Annotator`]). Capability lines and
/// reply codes are still explained; use an [`Annotator`] over a whole transcript for
/// notes that depend on the previous command.
pub fn annotate(entry: &Entry) -> Option<String> {
    Annotator::new().annotate(entry)
}

/// Annotates a transcript line by line, remembering what the client last asked.
#[derive(Debug, Clone, Default)]
pub struct Annotator {
    /// The verb of the last client line, upper-cased (`EHLO`, `AUTH`; for a SASL
    /// response, whatever it starts with), as [`Command::verb_of`] reads it.
    last_verb: Option<String>,
    /// The AUTH exchange in progress, from the parsed `AUTH <mech>` command.
    auth: Option<AuthExchange>,
    /// True while a multi-line reply is open (the last server line was `NNN-…`).
    in_reply: bool,
    /// True once an EHLO was sent on the clear-text connection.
    ehlo_before_tls: bool,
    /// True once TLS is established.
    tls: bool,
    /// True after a 354: the next 250 accepts the message.
    in_data: bool,
}

/// An AUTH exchange (RFC 4954 §4): the mechanism named by the command (`None` for one
/// smtprobe does not know) and how many 334 challenges came so far; a challenge means
/// something different for each mechanism and at each step.
#[derive(Debug, Clone, Copy)]
struct AuthExchange {
    mechanism: Option<Mechanism>,
    challenges: u8,
}

impl Annotator {
    /// A fresh annotator, at the start of a connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// The note for one line, if it has one.
    pub fn annotate(&mut self, entry: &Entry) -> Option<String> {
        match entry.dir {
            Direction::TlsEstablished => Some(self.tls_established()),
            Direction::Connected => Some(self.connected()),
            Direction::Event => None,
            Direction::Client => self.client(&entry.text, entry.tls),
            Direction::Server => self.server(&entry.text),
        }
    }

    fn tls_established(&mut self) -> String {
        let was_starttls = self.ehlo_before_tls;
        self.tls = true;
        self.in_reply = false;
        if was_starttls {
            "TLS handshake complete: from here on everything is encrypted. RFC 3207 §4.2: \
             everything learned before TLS could have been forged, so the client discards it \
             and sends EHLO again."
                .into()
        } else {
            "TLS handshake complete (implicit TLS, RFC 8314): the whole SMTP conversation is \
             encrypted, the greeting included."
                .into()
        }
    }

    fn connected(&mut self) -> String {
        *self = Annotator::default();
        "TCP connection open. In SMTP the server speaks first, with a 220 greeting \
         (RFC 5321 §3.1)."
            .into()
    }

    /// The mechanism of the AUTH exchange in progress, if any.
    fn mechanism(&self) -> Option<Mechanism> {
        self.auth.and_then(|a| a.mechanism)
    }

    fn client(&mut self, text: &str, tls: bool) -> Option<String> {
        let verb = Command::verb_of(text.as_bytes());
        let args = String::from_utf8_lossy(Command::args_of(text.as_bytes()));
        self.last_verb = Some(verb.clone());
        self.in_reply = false;
        // Inside an AUTH exchange, a client line is a SASL response (RFC 4954 §4), not a
        // command: it means what the mechanism makes of it.
        if self.auth.is_some() && verb != "AUTH" {
            if let Some(note) = self.sasl_response(text) {
                return Some(note);
            }
        }
        let note = match verb.as_str() {
            "EHLO" => {
                let name = args.trim();
                if tls && self.ehlo_before_tls {
                    format!(
                        "EHLO again, now inside TLS: RFC 3207 §4.2 requires the client to forget \
                         what it learned before TLS and ask again; AUTH usually appears only now. \
                         The client calls itself {name:?}."
                    )
                } else {
                    if !tls {
                        self.ehlo_before_tls = true;
                    }
                    format!(
                        "The client introduces itself as {name:?} and asks which extensions the \
                         server supports (RFC 5321 §4.1.1.1)."
                    )
                }
            }
            "HELO" => {
                "Old-style greeting (RFC 5321 §4.1.1.1): no extensions, so no STARTTLS or AUTH."
                    .into()
            }
            "STARTTLS" => "The client asks to switch this connection to TLS (RFC 3207). After the \
                           server's 220, the next bytes are the TLS handshake."
                .into(),
            "AUTH" => {
                let name = args.split_whitespace().next().unwrap_or_default();
                let mechanism = Mechanism::from_name(name);
                self.auth = Some(AuthExchange {
                    mechanism,
                    challenges: 0,
                });
                auth_note(text, mechanism, &name.to_ascii_uppercase())
            }
            "MAIL" => {
                let mut s = "Envelope sender (RFC 5321 §4.1.1.2): where bounces go; submission \
                             servers usually require it to be your own address."
                    .to_owned();
                if args.to_ascii_uppercase().contains(" SIZE=") {
                    s.push_str(" SIZE= announces the message size in bytes (RFC 1870).");
                }
                s
            }
            "RCPT" => "Envelope recipient (RFC 5321 §4.1.1.3): who receives the message.".into(),
            "DATA" => "The client asks to send the message; the server should answer 354.".into(),
            "QUIT" => "The client ends the session politely (RFC 5321 §4.1.1.10).".into(),
            "RSET" => "Resets the mail transaction (RFC 5321 §4.1.1.5).".into(),
            "NOOP" => "Does nothing; checks the server is alive (RFC 5321 §4.1.1.9).".into(),
            "." => "End of the message: a line with a single dot (RFC 5321 §4.1.1.4).".into(),
            _ => return self.sasl_response(text),
        };
        Some(note)
    }

    /// A client line inside an AUTH exchange (RFC 4954 §4), read by the mechanism the
    /// `AUTH` command named. Lines arrive redacted: the `<redacted …>` forms are the ones
    /// [`sasl`] records.
    fn sasl_response(&self, text: &str) -> Option<String> {
        let mech = self.mechanism();
        let note = match text {
            "*" => "The client cancels the AUTH exchange (RFC 4954 §4); the server answers 501.",
            "AQ==" if matches!(mech, None | Some(Mechanism::OAuthBearer)) => {
                "OAUTHBEARER acknowledgement of the error challenge (RFC 7628 §3.2.3), so the \
                 server sends its final reply."
            }
            "" => match mech {
                Some(Mechanism::ScramSha1 | Mechanism::ScramSha256) => {
                    "Empty response: the server's signature verified (RFC 5802 §3, the server \
                     knows the password), so the client completes the exchange and waits for \
                     235 (RFC 4954 §4)."
                }
                Some(Mechanism::XOAuth2) | None => {
                    "Empty response: acknowledges the server's error challenge so it sends its \
                     final reply (the XOAUTH2 protocol)."
                }
                Some(_) => "An empty response to the server's challenge (RFC 4954 §4).",
            },
            _ if text.starts_with("<redacted username>") => "The user name, base64-encoded (hidden here).",
            _ if text.starts_with("<redacted password>") => {
                "The password, base64-encoded (never shown; base64 is not encryption, TLS is what \
                 protects it)."
            }
            _ if text.starts_with("<redacted: PLAIN") => {
                "The PLAIN credentials (user and password in one base64 line, RFC 4616), hidden here."
            }
            _ if text.starts_with("<redacted: CRAM-MD5") => {
                "The CRAM-MD5 response (RFC 2195 §2): the user name and an HMAC-MD5 of the \
                 challenge keyed with the password, base64-encoded. The password itself never \
                 crosses the wire; hidden here all the same."
            }
            _ if text.starts_with("<redacted: SCRAM") => {
                "The SCRAM client-final-message (RFC 5802 §3): the nonce and a proof computed \
                 from the password. Hidden here: with the salt and nonces it would allow an \
                 offline password guess."
            }
            _ => return None,
        };
        Some(note.to_owned())
    }

    fn server(&mut self, text: &str) -> Option<String> {
        // One line at a time, read by the codec's own reply-line parser (RFC 5321 §4.2).
        let Some((code, last_line, rest)) = reply::parse_line(text.as_bytes()) else {
            self.in_reply = false;
            return None;
        };
        let rest = String::from_utf8_lossy(rest);
        let rest = rest.trim();
        let first = !self.in_reply;
        self.in_reply = !last_line;
        let last = self.last_verb.as_deref().unwrap_or_default();

        // A capability line of an EHLO reply (every line but the first).
        if code == 250 && (!first || self.last_verb.is_none()) {
            if let Some(note) = Extension::parse(rest.as_bytes()).and_then(|e| capability_note(&e))
            {
                return Some(note);
            }
        }
        if !first {
            return None;
        }
        if code != 250 && code != 354 {
            // The message was refused (or never sent): a later 250 is not its acceptance.
            self.in_data = false;
        }
        if code == 334 {
            let step = self.auth.map_or(0, |a| a.challenges);
            if let Some(a) = self.auth.as_mut() {
                a.challenges = a.challenges.saturating_add(1);
            }
            return Some(challenge_note(rest, self.mechanism(), step));
        }
        if code != 235 {
            // Any reply but 334 ends the exchange (RFC 4954 §4, §6); 235 below says how.
            self.auth = None;
        }
        let enhanced = EnhancedCode::parse_prefix(rest.as_bytes())
            .filter(|e| u16::from(e.class) == code / 100)
            .map(status::describe_enhanced_short);
        let contextual = match code {
            220 if last == "STARTTLS" => {
                Some("Ready to start TLS: the TLS handshake follows (RFC 3207 §4).".to_owned())
            }
            220 => {
                let who = providers::recognise("", Some(rest))
                    .map(|p| format!(" This greeting is {}'s.", p.display_name))
                    .unwrap_or_default();
                let esmtp = if rest.to_ascii_uppercase().contains("ESMTP") {
                    " ESMTP means it understands EHLO and extensions."
                } else {
                    ""
                };
                Some(format!(
                    "Server greeting: ready (RFC 5321 §4.3.1).{esmtp}{who}"
                ))
            }
            250 if last == "EHLO" => Some(
                "EHLO accepted: the first line names the server, each following line is one \
                 extension it supports (RFC 5321 §4.1.1.1)."
                    .to_owned(),
            ),
            250 if self.in_data => {
                self.in_data = false;
                Some(
                    "Message accepted: the server has taken responsibility for delivering it."
                        .to_owned(),
                )
            }
            250 if last == "MAIL" => Some("Sender accepted.".to_owned()),
            250 if last == "RCPT" => Some("Recipient accepted.".to_owned()),
            235 => {
                let scram = matches!(
                    self.auth.take().and_then(|a| a.mechanism),
                    Some(Mechanism::ScramSha1 | Mechanism::ScramSha256)
                );
                Some(if scram {
                    "Authenticated: the server accepted the proof, and it proved it knows the \
                     password too (RFC 5802 §3, RFC 4954 §6)."
                        .to_owned()
                } else {
                    "Authenticated: the server accepted the credentials (RFC 4954 §6).".to_owned()
                })
            }
            354 => {
                self.in_data = true;
                Some("Go ahead: the server waits for the message, ending with a line holding a single dot (RFC 5321 §4.1.1.4).".to_owned())
            }
            221 => Some("The server closes the connection (answer to QUIT).".to_owned()),
            _ => None,
        };
        let mut parts = Vec::new();
        match contextual {
            Some(c) => parts.push(c),
            None => parts.push(status::describe_reply_code(code)),
        }
        if code >= 400 {
            parts.push(status::reply_class(code).to_owned());
        }
        if let Some(e) = enhanced {
            parts.push(e);
        }
        Some(parts.join(" · "))
    }
}

fn auth_note(text: &str, mechanism: Option<Mechanism>, name: &str) -> String {
    let user = text
        .split_once("user ")
        .map(|(_, u)| u.trim_end_matches('>').to_owned());
    let as_user = user.map(|u| format!(" as {u}")).unwrap_or_default();
    match mechanism {
        Some(Mechanism::Plain) if text.contains('<') => format!(
            "Logs in{as_user} with PLAIN: user name and password in one base64 line (RFC 4616), \
             hidden here. Base64 is not encryption: only TLS protects it."
        ),
        Some(Mechanism::Plain) => "Starts a PLAIN login without initial response; the server \
                                   answers 334 and the credentials follow (RFC 4954 §4)."
            .into(),
        Some(Mechanism::Login) => "Starts a LOGIN: the server asks for the user name, then the \
                                   password, each in base64."
            .into(),
        Some(Mechanism::XOAuth2) => format!(
            "Logs in{as_user} with an OAuth 2.0 access token (XOAUTH2) instead of a password."
        ),
        Some(Mechanism::OAuthBearer) => {
            format!("Logs in{as_user} with an OAuth 2.0 bearer token (RFC 7628).")
        }
        Some(Mechanism::CramMd5) => "Starts CRAM-MD5 (RFC 2195): the server sends a challenge, \
                                     the client answers with an HMAC-MD5 of it keyed with the \
                                     password, which never crosses the wire."
            .into(),
        Some(m @ (Mechanism::ScramSha1 | Mechanism::ScramSha256)) => format!(
            "Starts {}{as_user} (RFC 5802, RFC 7677): the client-first-message carries the \
             user name and a fresh nonce. The password never crosses the wire, and the server \
             must prove it knows it too.",
            m.name()
        ),
        Some(Mechanism::External) => "Logs in with SASL EXTERNAL (RFC 4422 appendix A): the TLS \
                                      client certificate is the credential."
            .into(),
        None => format!("Starts authentication with the {name} mechanism (RFC 4954)."),
    }
}

/// A 334 challenge: base64 text whose meaning depends on the mechanism in progress and
/// on how many challenges came before (`step`, from 0) (RFC 4954 §4).
fn challenge_note(b64: &str, mechanism: Option<Mechanism>, step: u8) -> String {
    let scram = matches!(
        mechanism,
        Some(Mechanism::ScramSha1 | Mechanism::ScramSha256)
    );
    // The session redacts the SCRAM server-final-message where it records it.
    if b64.starts_with("<redacted: SCRAM") || (scram && step > 0) {
        return "The SCRAM server-final-message (RFC 5802 §3): the server's signature (v=), \
                its proof that it knows the password; the client verifies it before trusting \
                the 235. Hidden here: with the salt and nonces it would allow an offline \
                password guess."
            .into();
    }
    if b64.is_empty() {
        return "The server waits for the credentials (an empty challenge, RFC 4954 §4).".into();
    }
    let challenge = sasl::OAuthChallenge::decode(b64.as_bytes());
    if !challenge.base64 {
        return "A server challenge that is not valid base64 (RFC 4954 §4 requires base64).".into();
    }
    let shown = &challenge.shown;
    if challenge.status.is_some() {
        return format!(
            "The server reports an OAuth error (base64 JSON {shown}): the token was refused. \
             The client sends an empty line and the final error follows."
        );
    }
    match mechanism {
        Some(Mechanism::Login) => {
            format!("The server asks for {shown:?} (base64) (AUTH LOGIN prompt).")
        }
        Some(Mechanism::CramMd5) => format!(
            "The CRAM-MD5 challenge {shown:?} (base64, RFC 2195 §2): a unique string the client \
             signs with the password."
        ),
        _ if scram => format!(
            "The SCRAM server-first-message {shown:?} (base64, RFC 5802 §5.1): the combined \
             nonce (r=, which must start with the client's), the salt (s=) and the iteration \
             count (i=) for deriving the key from the password."
        ),
        _ => format!("The server asks for {shown:?} (base64)."),
    }
}

/// What an EHLO keyword means; `None` when the line is not a known capability.
fn capability_note(ext: &Extension) -> Option<String> {
    let params = &ext.params;
    let note = match ext.keyword.as_str() {
        "SIZE" => match params.first().and_then(|p| p.parse::<u64>().ok()) {
            Some(0) => "SIZE 0: no fixed message size limit (RFC 1870).".into(),
            Some(n) if n >= 1_000_000 => format!(
                "Messages up to {} MB ({n} bytes, encoded attachments included) (RFC 1870).",
                n / 1_000_000
            ),
            Some(n) => format!("Messages up to {} KB ({n} bytes) (RFC 1870).", n / 1000),
            None => "The server announces a message size limit (RFC 1870).".into(),
        },
        "PIPELINING" => {
            "The client may send several commands without waiting for each reply (RFC 2920).".into()
        }
        "8BITMIME" => "Accepts 8-bit message bodies (RFC 6152).".into(),
        "STARTTLS" => "Can upgrade this connection to TLS (RFC 3207).".into(),
        "AUTH" => {
            let mut s = format!(
                "Login mechanisms offered: {} (RFC 4954).",
                params.join(", ")
            );
            if params
                .iter()
                .any(|p| p.eq_ignore_ascii_case("PLAIN") || p.eq_ignore_ascii_case("LOGIN"))
            {
                s.push_str(" PLAIN and LOGIN send the password itself (protected only by TLS).");
            }
            if params
                .iter()
                .any(|p| p.eq_ignore_ascii_case("XOAUTH2") || p.eq_ignore_ascii_case("OAUTHBEARER"))
            {
                s.push_str(" XOAUTH2/OAUTHBEARER use OAuth access tokens.");
            }
            s
        }
        "ENHANCEDSTATUSCODES" => {
            "Replies carry enhanced status codes like 5.7.8 (RFC 2034, RFC 3463).".into()
        }
        "SMTPUTF8" => "Accepts UTF-8 in addresses and headers (RFC 6531).".into(),
        "CHUNKING" => {
            "Accepts BDAT, sending the message in sized chunks instead of DATA (RFC 3030).".into()
        }
        "BINARYMIME" => "Accepts binary message bodies with BDAT (RFC 3030).".into(),
        "DSN" => "Supports delivery status notification requests (RFC 3461).".into(),
        "DELIVERBY" => "Supports delivery deadlines (RFC 2852).".into(),
        "ETRN" => "Supports remote queue starting (RFC 1985).".into(),
        "VRFY" => "Answers VRFY address checks (RFC 5321 §3.5).".into(),
        "EXPN" => "Answers EXPN mailing list expansion (RFC 5321 §3.5).".into(),
        "HELP" => "Answers HELP (RFC 5321 §4.1.1.8).".into(),
        "REQUIRETLS" => {
            "Supports REQUIRETLS, mail that must travel over TLS only (RFC 8689).".into()
        }
        "MT-PRIORITY" => "Supports message priorities (RFC 6710).".into(),
        "LIMITS" => "Announces its limits on recipients and transactions (RFC 9422).".into(),
        k if k.starts_with("X-") || k.starts_with("XCLIENT") || k.starts_with("XFORWARD") => {
            "A vendor-specific extension.".into()
        }
        _ => return None,
    };
    Some(note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::Stage;

    fn e(dir: Direction, tls: bool, text: &str) -> Entry {
        Entry {
            ms: 0.0,
            dir,
            tls,
            stage: Stage::Ehlo,
            text: text.into(),
        }
    }

    #[test]
    fn login_prompts_are_decoded() {
        let mut a = Annotator::new();
        a.annotate(&e(Direction::Client, true, "AUTH LOGIN"));
        let n = a
            .annotate(&e(Direction::Server, true, "334 VXNlcm5hbWU6"))
            .unwrap();
        assert!(n.contains("\"Username:\" (base64)"), "{n}");
        assert!(a
            .annotate(&e(Direction::Client, true, "<redacted username>"))
            .unwrap()
            .contains("user name"));
        let n = a
            .annotate(&e(Direction::Server, true, "334 UGFzc3dvcmQ6"))
            .unwrap();
        assert!(n.contains("Password:"), "{n}");
        // Without context, too.
        assert!(annotate(&e(Direction::Server, true, "334 VXNlcm5hbWU6"))
            .unwrap()
            .contains("Username:"));
    }

    #[test]
    fn gmail_session_is_explained() {
        let mut a = Annotator::new();
        let mut notes = Vec::new();
        for (dir, tls, text) in [
            (
                Direction::Connected,
                false,
                "connected to 142.250.0.108:587",
            ),
            (
                Direction::Server,
                false,
                "220 smtp.gmail.com ESMTP t66sm6271302pjb.45 - gsmtp",
            ),
            (Direction::Client, false, "EHLO client.example"),
            (
                Direction::Server,
                false,
                "250-smtp.gmail.com at your service, [203.0.113.7]",
            ),
            (Direction::Server, false, "250-SIZE 35882577"),
            (Direction::Server, false, "250-STARTTLS"),
            (Direction::Server, false, "250 SMTPUTF8"),
            (Direction::Client, false, "STARTTLS"),
            (Direction::Server, false, "220 2.0.0 Ready to start TLS"),
            (Direction::TlsEstablished, true, "TLS established: TLSv1.3"),
            (Direction::Client, true, "EHLO client.example"),
            (
                Direction::Server,
                true,
                "250-smtp.gmail.com at your service, [203.0.113.7]",
            ),
            (
                Direction::Server,
                true,
                "250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH",
            ),
            (Direction::Server, true, "250 PIPELINING"),
            (
                Direction::Client,
                true,
                "AUTH PLAIN <redacted: user you@gmail.com>",
            ),
            (
                Direction::Server,
                true,
                "535-5.7.8 Username and Password not accepted. For more information, go to",
            ),
            (
                Direction::Server,
                true,
                "535 5.7.8  https://support.google.com/mail/?p=BadCredentials x - gsmtp",
            ),
        ] {
            notes.push(a.annotate(&e(dir, tls, text)));
        }
        let n = |i: usize| notes[i].clone().unwrap_or_default();
        assert!(n(0).contains("server speaks first"));
        assert!(n(1).contains("Gmail"), "{}", n(1));
        assert!(n(3).contains("extension"), "{}", n(3));
        assert!(n(4).contains("35 MB"), "{}", n(4));
        assert!(n(5).contains("RFC 3207"));
        assert!(n(6).contains("UTF-8"));
        assert!(n(8).contains("TLS handshake follows"), "{}", n(8));
        assert!(
            n(9).contains("RFC 3207 §4.2") && n(9).contains("EHLO again"),
            "{}",
            n(9)
        );
        assert!(n(10).contains("EHLO again"), "{}", n(10));
        assert!(n(12).contains("LOGIN, PLAIN, XOAUTH2"), "{}", n(12));
        assert!(
            n(14).contains("you@gmail.com") && n(14).contains("RFC 4616"),
            "{}",
            n(14)
        );
        assert!(
            n(15).contains("535") && n(15).contains("5.7.8: Authentication credentials invalid"),
            "{}",
            n(15)
        );
        assert!(
            notes[16].is_none(),
            "continuation lines of an error are not re-annotated"
        );
    }

    #[test]
    fn stateless_capabilities_and_codes() {
        assert!(annotate(&e(Direction::Server, false, "250-PIPELINING"))
            .unwrap()
            .contains("RFC 2920"));
        assert!(
            annotate(&e(Direction::Server, false, "250 ENHANCEDSTATUSCODES"))
                .unwrap()
                .contains("5.7.8")
        );
        assert!(annotate(&e(Direction::Server, false, "250 CHUNKING"))
            .unwrap()
            .contains("BDAT"));
        assert!(annotate(&e(Direction::Server, false, "250-8BITMIME"))
            .unwrap()
            .contains("8-bit"));
        let n = annotate(&e(Direction::Server, false, "421 4.7.0 Try again later")).unwrap();
        assert!(n.contains("421") && n.contains("4.7.0"), "{n}");
        assert!(
            annotate(&e(Direction::Client, false, "MAIL FROM:<a@b> SIZE=10"))
                .unwrap()
                .contains("RFC 1870")
        );
    }

    #[test]
    fn oauth_error_challenge_is_shown() {
        let mut a = Annotator::new();
        a.annotate(&e(
            Direction::Client,
            true,
            "AUTH XOAUTH2 <redacted: token for user a@b>",
        ));
        let n = a
            .annotate(&e(Direction::Server, true, "334 eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ=="))
            .unwrap();
        assert!(
            n.contains("OAuth error") && n.contains("\"status\":\"400\""),
            "{n}"
        );
    }

    #[test]
    fn message_acceptance_only_after_354() {
        let mut a = Annotator::new();
        a.annotate(&e(Direction::Client, true, "DATA"));
        a.annotate(&e(Direction::Server, true, "354  Go ahead x - gsmtp"));
        a.annotate(&e(Direction::Client, true, "."));
        let n = a
            .annotate(&e(Direction::Server, true, "550 5.7.1 rejected"))
            .unwrap();
        assert!(n.contains("5.7.1"), "{n}");
        a.annotate(&e(Direction::Client, true, "RSET"));
        let n = a
            .annotate(&e(Direction::Server, true, "250 2.1.5 Flushed"))
            .unwrap();
        assert!(!n.contains("Message accepted"), "{n}");
    }

    /// Runs `lines` (`C: `/`S: ` prefixed) through one annotator; the notes in order.
    fn notes(lines: &[&str]) -> Vec<String> {
        let mut a = Annotator::new();
        lines
            .iter()
            .map(|l| {
                let (dir, text) = match l.split_once(": ") {
                    Some(("C", t)) => (Direction::Client, t),
                    Some(("S", t)) => (Direction::Server, t),
                    _ => (Direction::Client, l.strip_prefix("C:").unwrap_or(l)),
                };
                a.annotate(&e(dir, true, text)).unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn cram_md5_exchange_is_explained_by_its_mechanism() {
        let n = notes(&[
            "C: AUTH CRAM-MD5",
            "S: 334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+",
            "C: <redacted: CRAM-MD5 response for user tim>",
            "S: 235 2.7.0 ok",
        ]);
        assert!(n[0].contains("RFC 2195"), "{}", n[0]);
        assert!(
            n[1].contains("CRAM-MD5 challenge")
                && n[1].contains("<1896.697170952@postoffice.reston.mci.net>")
                && !n[1].contains("LOGIN"),
            "{}",
            n[1]
        );
        assert!(
            n[2].contains("HMAC-MD5") && n[2].contains("never"),
            "{}",
            n[2]
        );
        assert!(n[3].contains("Authenticated"), "{}", n[3]);
    }

    /// The parity helper's finding: the server-final 334 was read as an AUTH LOGIN
    /// prompt and the empty client answer as XOAUTH2's.
    #[test]
    fn scram_exchange_is_explained_step_by_step() {
        for final_shown in [
            "S: 334 <redacted: SCRAM server signature>",
            // A server-final the session could not recognise stays what the server sent.
            "S: 334 dj1BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE9",
        ] {
            let n = notes(&[
                "C: AUTH SCRAM-SHA-1 <client-first: user user>",
                "S: 334 cj1meWtvK2QybGJiRmdPTlJ2OXFreGRhd0wzcmZjTkhZSlkxWlZ2V1ZzN2oscz1RU1hDUitRNnNlazhiZjkyLGk9NDA5Ng==",
                "C: <redacted: SCRAM client proof for user user>",
                final_shown,
                "C:",
                "S: 235 2.7.0 ok",
            ]);
            assert!(
                n[0].contains("SCRAM-SHA-1 as user") && n[0].contains("RFC 5802"),
                "{}",
                n[0]
            );
            assert!(
                n[1].contains("server-first-message") && n[1].contains("i=4096"),
                "{}",
                n[1]
            );
            assert!(n[2].contains("client-final-message"), "{}", n[2]);
            assert!(
                n[3].contains("server-final-message") && !n[3].contains("LOGIN"),
                "{final_shown}: {}",
                n[3]
            );
            assert!(
                n[4].contains("signature verified") && !n[4].contains("XOAUTH2"),
                "{}",
                n[4]
            );
            assert!(n[5].contains("proved it knows the password"), "{}", n[5]);
        }
        // The next exchange starts fresh: an XOAUTH2 empty answer is XOAUTH2's again.
        let n = notes(&[
            "C: AUTH SCRAM-SHA-256 <client-first: user u>",
            "S: 535 5.7.8 no",
            "C: AUTH XOAUTH2 <redacted: token for user a@b>",
            "S: 334 eyJzdGF0dXMiOiI0MDAifQ==",
            "C:",
        ]);
        assert!(n[3].contains("OAuth error"), "{}", n[3]);
        assert!(n[4].contains("XOAUTH2"), "{}", n[4]);
    }

    #[test]
    fn garbage_is_harmless() {
        for t in [
            "",
            "2",
            "25",
            "250",
            "250-",
            "999 x",
            "abc",
            "334 !!!",
            "334 \u{1b}",
            "\u{0}",
        ] {
            let _ = annotate(&e(Direction::Server, false, t));
            let _ = annotate(&e(Direction::Client, false, t));
            let _ = annotate(&e(Direction::Event, false, t));
        }
    }
}
