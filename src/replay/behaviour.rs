//! What a fixture's *server* does at each stage, read out of its steps once, at start.
//!
//! A fixture is written as one client's conversation; the replay server
//! ([`super::server`]) must answer any conforming client. So the steps are folded into
//! a table: the greeting, the EHLO reply before and after TLS, the reply to STARTTLS,
//! the AUTH exchange (its challenges and its result), MAIL, RCPT, DATA, the final dot,
//! QUIT, and what the server does after each reply (go on, start TLS, close, fall
//! silent). A stage the fixture never reaches gets what a conforming server sends
//! (RFC 5321 §4.2), decided in [`super::server`].
//!
//! A fixture that cannot be played as a server is refused here, with its line.

use crate::certs::ServerCert;
use crate::fixture::{ClientPattern, Expect, Fixture, FixtureError, Step, ANY};
use crate::protocol::escape::unescape;
use crate::protocol::{reply, Capabilities, Command, ReplyParser};
use crate::tls_mode::TlsMode;
use std::time::Duration;

/// What the server does once a reply is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// Wait for the next command.
    Continue,
    /// Perform the TLS handshake (the reply was the `220` to STARTTLS, RFC 3207 §4).
    Tls,
    /// Close the connection (a `421`, the end of the fixture, `* close`).
    Close,
    /// Stop answering (`* silence`).
    Silence,
}

/// One server reply of the fixture and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// The fixture line of its first `S:` line (0 for a reply the server made up).
    pub line: usize,
    /// `~` pauses before it.
    pub pause: Duration,
    /// The bytes, CRLF-terminated, written in one write (may hold several replies: an
    /// injected line travels with the `220`).
    pub wire: Vec<u8>,
    /// The code of its first reply (0 for an empty reply: a silence or a close).
    pub code: u16,
    /// What happens after it.
    pub after: After,
    /// `~ trickle`: the gap between bytes (zero: one write).
    pub trickle: Duration,
}

impl Reply {
    /// A reply the server makes up (not from the fixture).
    pub(crate) fn made_up(text: &str) -> Reply {
        let mut wire = text.as_bytes().to_vec();
        wire.extend_from_slice(b"\r\n");
        Reply {
            line: 0,
            pause: Duration::ZERO,
            code: reply::code_of(text.as_bytes()).unwrap_or(0),
            wire,
            after: After::Continue,
            trickle: Duration::ZERO,
        }
    }

    /// The first digit of the code: 2, 3, 4, 5 (0 when there is no reply).
    pub(crate) fn class(&self) -> u16 {
        self.code / 100
    }
}

/// The AUTH exchange a fixture recorded (RFC 4954 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthExchange {
    /// The mechanism the recorded client used (upper-cased).
    pub mechanism: String,
    /// The `334` challenges the server sent, in order.
    pub challenges: Vec<Reply>,
    /// The final reply: `235` success or the refusal.
    pub result: Reply,
}

/// A recorded reply and the state it was given in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recorded {
    /// The reply.
    pub reply: Reply,
    /// True when the client had authenticated successfully before this command.
    pub authenticated: bool,
    /// The client line's pattern (for `# require: from` / `to`).
    pub pattern: Option<String>,
}

/// The server side of one fixture.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// The fixture's name (the scenario).
    pub name: String,
    /// The outcome the scenario delivers.
    pub expect: Expect,
    /// How the connection is secured.
    pub mode: TlsMode,
    /// The host (used in made-up replies and the certificate).
    pub host: String,
    /// The `user` header.
    pub user: Option<String>,
    pub(crate) require_user: bool,
    pub(crate) require_from: bool,
    pub(crate) require_to: bool,
    /// The certificate the server presents.
    pub certificate: ServerCert,
    pub(crate) greeting: Reply,
    /// The EHLO reply before TLS (index 0) and inside TLS (index 1).
    pub(crate) ehlo: [Option<Reply>; 2],
    pub(crate) starttls: Option<Reply>,
    /// The AUTH exchange before TLS (0) and inside TLS (1).
    pub(crate) auth: [Option<AuthExchange>; 2],
    pub(crate) mail: Option<Recorded>,
    pub(crate) rcpt: Option<Recorded>,
    /// The reply to RCPT when MAIL was refused (`503 5.5.1 MAIL first`).
    pub(crate) rcpt_without_mail: Option<Reply>,
    pub(crate) data: Option<Reply>,
    /// The reply to DATA with no accepted recipient.
    pub(crate) data_without_rcpt: Option<Reply>,
    /// The reply after the message's final `.`.
    pub(crate) message: Option<Reply>,
    pub(crate) quit: Option<Reply>,
    /// The fixture line of the reply that carries the scenario's result: the first
    /// 4yz/5yz reply to a required client line, else the last reply before QUIT.
    pub(crate) decisive_line: usize,
}

/// The stage a client line of the fixture belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ehlo,
    StartTls,
    Auth,
    AuthResponse,
    Mail,
    Rcpt,
    Data,
    Message,
    Quit,
    Other,
}

fn kind_of(p: &ClientPattern, in_auth: bool) -> Kind {
    match p {
        ClientPattern::AuthPlain { .. } | ClientPattern::OAuth { .. } => Kind::Auth,
        ClientPattern::PlainResponse { .. }
        | ClientPattern::LoginUsername
        | ClientPattern::LoginPassword => Kind::AuthResponse,
        ClientPattern::Message => Kind::Message,
        ClientPattern::Line(_) if in_auth => Kind::AuthResponse,
        ClientPattern::Line(t) => match Command::verb_of(t.as_bytes()).as_str() {
            "EHLO" | "HELO" => Kind::Ehlo,
            "STARTTLS" => Kind::StartTls,
            "AUTH" => Kind::Auth,
            "MAIL" => Kind::Mail,
            "RCPT" => Kind::Rcpt,
            "DATA" => Kind::Data,
            "QUIT" => Kind::Quit,
            _ => Kind::Other,
        },
    }
}

fn mechanism_of(p: &ClientPattern) -> String {
    match p {
        ClientPattern::AuthPlain { .. } => "PLAIN".into(),
        ClientPattern::OAuth { mechanism, .. } => mechanism.name().into(),
        ClientPattern::Line(t) => Command::first_arg_of(t.as_bytes()),
        _ => String::new(),
    }
}

/// Steps up to the next client line: the reply they make and what follows it.
fn reply_from(f: &Fixture, from: usize) -> (Reply, usize) {
    let mut r = Reply {
        line: 0,
        pause: Duration::ZERO,
        wire: Vec::new(),
        code: 0,
        after: After::Continue,
        trickle: Duration::ZERO,
    };
    let mut i = from;
    while let Some(s) = f.steps.get(i) {
        match &s.step {
            Step::Server(text) => {
                // Escapes were validated by `Fixture::parse`.
                let bytes = unescape(text).unwrap_or_default();
                if r.line == 0 {
                    r.line = s.line;
                    r.code = reply::code_of(&bytes).unwrap_or(0);
                }
                r.wire.extend(bytes);
                r.wire.extend_from_slice(b"\r\n");
            }
            Step::Pause(d) if r.wire.is_empty() => r.pause += *d,
            // A pause between the lines of one write cannot be played as a server
            // (the write is one); it is ignored.
            Step::Pause(_) => {}
            Step::Trickle(d) if r.wire.is_empty() => r.trickle = *d,
            Step::Trickle(_) | Step::Note(_) => {}
            Step::Tls(_) => {
                r.after = After::Tls;
                return (r, i + 1);
            }
            Step::Close => {
                r.after = After::Close;
                return (r, f.steps.len());
            }
            Step::Silence => {
                r.after = After::Silence;
                return (r, f.steps.len());
            }
            Step::Client { .. } => return (r, i),
            // Refused by `Behaviour::from_fixture` before any reply is folded.
            Step::Raw(_) | Step::Repeat(_) | Step::Read => {}
        }
        i += 1;
    }
    // RFC 5321 §3.8: the fixture ends after this reply, so the server closes; a
    // command with no reply at all is a silence.
    r.after = if r.wire.is_empty() {
        After::Silence
    } else {
        After::Close
    };
    (r, i)
}

/// Hostile steps have no stage a server could map them to: they are played lock-step
/// only (smtprobe's own tests).
fn refuse_lock_step_only(f: &Fixture) -> Result<(), FixtureError> {
    match f
        .steps
        .iter()
        .find(|s| matches!(s.step, Step::Raw(_) | Step::Repeat(_) | Step::Read))
    {
        Some(s) => Err(FixtureError::at(
            s.line,
            format!(
                "`{}` is played only lock-step (strict mode), not as a server",
                crate::fixture::step_text(&s.step)
            ),
        )),
        None => Ok(()),
    }
}

/// The state of the conversation while [`Behaviour::from_fixture`] walks it.
struct Fold {
    /// The line of the first 4xx/5xx reply (the decisive one when there is one).
    first_failure: Option<usize>,
    /// The line of the last reply that counts.
    last_reply: usize,
    tls: bool,
    authenticated: bool,
    mail_ok: bool,
    rcpt_ok: bool,
    /// An AUTH exchange still waiting for its final reply, with its TLS slot.
    auth: Option<(usize, AuthExchange)>,
}

impl Fold {
    /// Files the reply to one client line in the server's table: the first one of each
    /// kind (per TLS state for EHLO and AUTH) is what the server plays.
    fn record(&mut self, b: &mut Behaviour, kind: Kind, pattern: &ClientPattern, reply: Reply) {
        let t = usize::from(self.tls);
        let starts_tls = reply.after == After::Tls;
        match kind {
            Kind::Ehlo => {
                b.ehlo[t].get_or_insert(reply);
            }
            Kind::StartTls => {
                b.starttls.get_or_insert(reply);
            }
            Kind::Auth | Kind::AuthResponse => {
                let (slot, mut ex) = self.auth.take().unwrap_or_else(|| {
                    (
                        t,
                        AuthExchange {
                            mechanism: mechanism_of(pattern),
                            challenges: Vec::new(),
                            result: Reply::made_up(""),
                        },
                    )
                });
                if reply.code == 334 {
                    ex.challenges.push(reply);
                    self.auth = Some((slot, ex));
                } else {
                    self.authenticated = reply.class() == 2;
                    ex.result = reply;
                    b.auth[slot].get_or_insert(ex);
                }
            }
            Kind::Mail => {
                self.mail_ok = reply.class() == 2;
                b.mail.get_or_insert(Recorded {
                    reply,
                    authenticated: self.authenticated,
                    pattern: Some(pattern.text()),
                });
            }
            Kind::Rcpt => {
                self.rcpt_ok |= self.mail_ok && reply.class() == 2;
                if !self.mail_ok {
                    b.rcpt_without_mail.get_or_insert(reply);
                } else {
                    b.rcpt.get_or_insert(Recorded {
                        reply,
                        authenticated: self.authenticated,
                        pattern: Some(pattern.text()),
                    });
                }
            }
            Kind::Data => {
                if !self.rcpt_ok {
                    b.data_without_rcpt.get_or_insert(reply);
                } else {
                    b.data.get_or_insert(reply);
                }
            }
            Kind::Message => {
                b.message.get_or_insert(reply);
                self.mail_ok = false;
                self.rcpt_ok = false;
            }
            Kind::Quit => {
                b.quit.get_or_insert(reply);
            }
            Kind::Other => {}
        }
        if starts_tls {
            // RFC 3207 §4.2: the session starts over after the handshake.
            self.tls = true;
            self.authenticated = false;
        }
    }
}

impl Behaviour {
    /// Folds a fixture into the server's table; errors name the fixture line.
    pub fn from_fixture(f: &Fixture) -> Result<Behaviour, FixtureError> {
        refuse_lock_step_only(f)?;
        let h = &f.header;
        let mut i = 0;
        if h.mode == TlsMode::Implicit {
            // `Fixture::parse` checked the TLS step comes first.
            while !matches!(f.steps.get(i).map(|s| &s.step), Some(Step::Tls(_)) | None) {
                i += 1;
            }
            i += 1;
        }
        let (greeting, next) = reply_from(f, i);
        if greeting.wire.is_empty() {
            let line = f.steps.get(i).map_or(0, |s| s.line);
            return Err(FixtureError::at(
                line,
                "the server must speak first: a greeting `S: 220 …` (RFC 5321 §3.1)",
            ));
        }
        let mut fold = Fold {
            first_failure: (greeting.class() >= 4).then_some(greeting.line),
            last_reply: greeting.line,
            tls: h.mode == TlsMode::Implicit,
            authenticated: false,
            mail_ok: false,
            rcpt_ok: false,
            auth: None,
        };
        let mut b = Behaviour {
            name: h.name.clone(),
            expect: h.expect.clone(),
            mode: h.mode,
            host: h.host.clone(),
            user: h.user.clone(),
            require_user: f.serve.require_user,
            require_from: f.serve.require_from,
            require_to: f.serve.require_to,
            certificate: f.serve.certificate,
            decisive_line: greeting.line,
            greeting,
            ehlo: [None, None],
            starttls: None,
            auth: [None, None],
            mail: None,
            rcpt: None,
            rcpt_without_mail: None,
            data: None,
            data_without_rcpt: None,
            message: None,
            quit: None,
        };
        i = next;
        while let Some(s) = f.steps.get(i) {
            let Step::Client { pattern, optional } = &s.step else {
                i += 1;
                continue;
            };
            let kind = kind_of(pattern, fold.auth.is_some());
            let (reply, next) = reply_from(f, i + 1);
            // Replies to optional (`C?:`) lines are not the result: a client that skips
            // the line must be able to receive it.
            if kind != Kind::Quit && reply.line != 0 && !optional {
                fold.last_reply = reply.line;
                if reply.class() >= 4 && fold.first_failure.is_none() {
                    fold.first_failure = Some(reply.line);
                }
            }
            if reply.after == After::Tls && kind != Kind::StartTls {
                return Err(FixtureError::at(
                    s.line,
                    "the TLS handshake must follow the reply to `C: STARTTLS` (RFC 3207 §4)",
                ));
            }
            fold.record(&mut b, kind, pattern, reply);
            i = next;
        }
        if let Some((_, ex)) = fold.auth {
            let line = ex.challenges.last().map_or(0, |c| c.line);
            return Err(FixtureError::at(
                line,
                "the AUTH exchange never ends: a `334` challenge needs a client line and a \
                 final reply after it (RFC 4954 §4)",
            ));
        }
        b.check_complete()?;
        b.decisive_line = fold.first_failure.unwrap_or(fold.last_reply);
        Ok(b)
    }

    /// What a server needs that the conversation may lack: the lines `require` names,
    /// and EHLO replies that parse.
    fn check_complete(&self) -> Result<(), FixtureError> {
        if self.require_from && self.mail.is_none() {
            return Err(FixtureError::whole(
                "`# require: from` needs a `C: MAIL FROM:<…>` line",
            ));
        }
        if self.require_to && self.rcpt.is_none() {
            return Err(FixtureError::whole(
                "`# require: to` needs a `C: RCPT TO:<…>` line after an accepted MAIL",
            ));
        }
        for ehlo in self.ehlo.iter().flatten() {
            let mut p = ReplyParser::new();
            p.push(&ehlo.wire);
            if let Some(Err(e)) = p.next_reply() {
                return Err(FixtureError::at(
                    ehlo.line,
                    format!("the EHLO reply does not parse: {e}"),
                ));
            }
        }
        Ok(())
    }

    /// The capabilities the EHLO reply announces in this TLS state.
    pub(crate) fn capabilities(&self, tls: bool) -> Capabilities {
        let Some(r) = &self.ehlo[usize::from(tls)] else {
            return Capabilities::default();
        };
        let mut p = ReplyParser::new();
        p.push(&r.wire);
        match p.next_reply() {
            Some(Ok(reply)) if reply.is_positive() => Capabilities::from_ehlo(&reply),
            _ => Capabilities::default(),
        }
    }

    /// True when a MAIL/RCPT argument matches the fixture's recorded line pattern.
    pub(crate) fn matches_recorded(pattern: &str, line: &[u8]) -> bool {
        glob(
            &pattern.to_ascii_lowercase(),
            &String::from_utf8_lossy(line).to_ascii_lowercase(),
        )
    }
}

/// `{any}` wildcard match (the fixture's own client-line rule, case-insensitive).
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split(ANY).collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (k, part) in parts.iter().enumerate() {
        if k == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if k == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name: &str) -> Behaviour {
        let path = format!("{}/fixtures/{name}.fixture", env!("CARGO_MANIFEST_DIR"));
        let f = Fixture::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
        Behaviour::from_fixture(&f).unwrap()
    }

    #[test]
    fn gmail_app_password_table() {
        let b = load("gmail-587-app-password-required");
        assert_eq!(b.greeting.code, 220);
        assert_eq!(b.starttls.as_ref().unwrap().after, After::Tls);
        assert!(b.capabilities(false).has("STARTTLS"));
        assert!(b.capabilities(true).offers_auth());
        let auth = b.auth[1].as_ref().unwrap();
        assert_eq!(auth.mechanism, "PLAIN");
        assert_eq!(auth.result.code, 534);
        assert_eq!(b.decisive_line, auth.result.line);
        assert_eq!(b.quit.as_ref().unwrap().code, 221);
    }

    #[test]
    fn decisive_reply_per_kind_of_scenario() {
        let b = load("gmail-587-plain-send-ok");
        assert_eq!(b.decisive_line, b.message.as_ref().unwrap().line);
        let b = load("gmail-587-starttls-stripped");
        assert_eq!(b.decisive_line, b.ehlo[0].as_ref().unwrap().line);
        let b = load("gmail-587-auth-before-starttls");
        // The AUTH line is optional: the EHLO without AUTH already is the result.
        assert_eq!(b.decisive_line, b.ehlo[0].as_ref().unwrap().line);
        assert_eq!(b.auth[0].as_ref().unwrap().result.code, 530);
        let b = load("gmail-587-421-at-ehlo");
        assert_eq!(b.ehlo[0].as_ref().unwrap().after, After::Close);
        let b = load("gmail-587-mail-without-auth");
        assert_eq!(b.rcpt_without_mail.as_ref().unwrap().code, 503);
        assert!(!b.mail.as_ref().unwrap().authenticated);
        let b = load("gmail-587-xoauth2-token-rejected");
        let ex = b.auth[1].as_ref().unwrap();
        assert_eq!((ex.challenges.len(), ex.result.code), (1, 535));
        let b = load("gmail-587-starttls-injection");
        let st = b.starttls.as_ref().unwrap();
        assert_eq!(st.after, After::Close);
        assert!(st.wire.ends_with(b"250 injected\r\n"));
    }

    #[test]
    fn every_bundled_fixture_is_playable() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
        let sub = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/providers");
        let files = [root, sub]
            .into_iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten();
        for e in files {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "fixture") {
                let f = Fixture::parse(&std::fs::read_to_string(&p).unwrap()).unwrap();
                Behaviour::from_fixture(&f).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            }
        }
    }

    #[test]
    fn unplayable_fixtures_are_refused_with_their_line() {
        let head = "# name: t\n# story: s\n# host: h\n# port: 25\n# mode: none\n# expect: ok\n\n";
        let f = Fixture::parse(&format!("{head}C: EHLO {{any}}\nS: 250 h\n")).unwrap();
        let e = Behaviour::from_fixture(&f).unwrap_err();
        assert_eq!(e.line, Some(8));
        assert!(e.message.contains("speak first"), "{e}");
        let f = Fixture::parse(&format!(
            "{head}S: 220 h\nC: EHLO {{any}}\nS: 250 AUTH LOGIN\nC: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\n"
        ))
        .unwrap();
        let e = Behaviour::from_fixture(&f).unwrap_err();
        assert_eq!(e.line, Some(12), "{e}");
        // Hostile steps are lock-step only.
        for (step, shown) in [
            ("S!: 25", "S!: 25"),
            ("~ repeat 9\nS: 250 x", "~ repeat 9"),
            ("* read", "* read"),
        ] {
            let f = Fixture::parse(&format!("{head}S: 220 h\nC: EHLO {{any}}\n{step}\n")).unwrap();
            let e = Behaviour::from_fixture(&f).unwrap_err();
            assert_eq!(e.line, Some(10), "{e}");
            assert!(
                e.message
                    .contains(&format!("`{shown}` is played only lock-step")),
                "{e}"
            );
        }
    }

    #[test]
    fn glob_is_the_fixture_rule() {
        assert!(glob("mail from:<a@b>{any}", "mail from:<a@b> size=3"));
        assert!(!glob("mail from:<a@b>{any}", "mail from:<x@b>"));
        assert!(glob("rcpt to:<{any}>", "rcpt to:<q@r>"));
    }
}
