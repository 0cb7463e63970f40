//! The rule table: which diagnosis code a server's reply earns.
//!
//! A rule names the stage(s) it applies to and up to five criteria: the enhanced status
//! code (RFC 3463), the basic reply code (RFC 5321 §4.2), the reply's class (4 or 5),
//! key words (any of them, in the reply text lower-cased with whitespace collapsed), and
//! a provider. Every criterion a rule names must hold for it to match.
//!
//! # Precedence (one rule, documented once)
//! Of all matching rules, the most specific wins, compared in this order:
//! 1. an **enhanced status code** criterion (an exact `X.Y.Z` beats `X.Y.*`),
//! 2. a **basic code** criterion,
//! 3. a **key word** criterion,
//! 4. a **provider** criterion (a provider rule refines the generic rule it shadows),
//! 5. a **class** criterion (the fallback: `5xx at AUTH` → `auth.rejected`).
//!
//! Ties go to the rule listed first. So `535 5.7.139 … SmtpClientAuthentication is
//! disabled` (enhanced + words) beats `535` (basic), which beats `too many` (words); key
//! words never override a matching enhanced code. A provider rule must name a class and
//! must refine a generic rule of the same stage and class (the module's tests check this), so it
//! can never turn a temporary (4xx) reply into a permanent verdict or the other way.
//!
//! The evidence is typed ([`Evidence`], built from the parsed [`Reply`]), never a
//! rendered string.

use super::codes::{self as c, CodeInfo};
use crate::protocol::Reply;
use crate::stage::Stage;

/// Enhanced status code criterion `(subject, detail)`; `detail == ANY` matches any detail.
type Enhanced = (u16, u16);

/// Any detail of an enhanced status code subject (`5.1.*`).
pub const ANY: u16 = u16::MAX;

/// One row of the table.
#[derive(Debug)]
pub struct Rule {
    /// Stable name, used by the tests (one triggering test per rule).
    pub id: &'static str,
    /// Stages the rule applies to.
    pub stages: &'static [Stage],
    /// Enhanced status codes, any of them (class not compared: it is the reply's class).
    pub enhanced: &'static [Enhanced],
    /// Basic reply codes, any of them.
    pub basic: &'static [u16],
    /// Key words, any of them (lower case).
    pub words: &'static [&'static str],
    /// The provider (short name) the rule refines the generic table for.
    pub provider: Option<&'static str>,
    /// Reply classes (4, 5), any of them.
    pub class: &'static [u8],
    /// The verdict.
    pub code: CodeInfo,
    /// One sentence; `{who}`, `{tag}` and `{at}` are filled in.
    pub summary: &'static str,
    /// A fix specific to this rule (else the provider's, else the code's).
    pub fix: Option<&'static str>,
}

/// What the table looks at: the parsed reply and where it came.
pub struct Evidence<'a> {
    /// The stage whose command the reply answered.
    pub stage: Stage,
    /// The reply code.
    pub code: u16,
    /// The reply's class digit.
    pub class: u8,
    /// The enhanced status code `(class, subject, detail)`, when the reply has one.
    pub enhanced: Option<(u8, u16, u16)>,
    /// The reply text lower-cased with whitespace collapsed.
    pub words: String,
    /// The recognised provider's short name.
    pub provider: Option<&'a str>,
}

impl<'a> Evidence<'a> {
    /// Evidence from a reply.
    pub fn new(stage: Stage, reply: &Reply, provider: Option<&'a str>) -> Self {
        let words = reply
            .joined_text()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        Evidence {
            stage,
            code: reply.code(),
            class: reply.class(),
            enhanced: reply.enhanced().map(|e| (e.class, e.subject, e.detail)),
            words,
            provider,
        }
    }
}

impl Rule {
    /// The rank of a matching rule (see the module docs), or `None` when it does not match.
    fn rank(&self, ev: &Evidence) -> Option<[u8; 5]> {
        if !self.stages.contains(&ev.stage) {
            return None;
        }
        let enhanced = if self.enhanced.is_empty() {
            0
        } else {
            let (_, subject, detail) = ev.enhanced?;
            if self.enhanced.contains(&(subject, detail)) {
                2
            } else if self.enhanced.contains(&(subject, ANY)) {
                1
            } else {
                return None;
            }
        };
        if !self.basic.is_empty() && !self.basic.contains(&ev.code) {
            return None;
        }
        if !self.words.is_empty() && !self.words.iter().any(|w| ev.words.contains(w)) {
            return None;
        }
        if self.provider.is_some() && self.provider != ev.provider {
            return None;
        }
        if !self.class.is_empty() && !self.class.contains(&ev.class) {
            return None;
        }
        Some([
            enhanced,
            u8::from(!self.basic.is_empty()),
            u8::from(!self.words.is_empty()),
            u8::from(self.provider.is_some()),
            u8::from(!self.class.is_empty()),
        ])
    }
}

/// The rule a reply earns: the most specific match, ties to the first listed.
pub fn select(ev: &Evidence) -> Option<&'static Rule> {
    let mut best: Option<(&'static Rule, [u8; 5])> = None;
    for r in RULES {
        if let Some(rank) = r.rank(ev) {
            if best.is_none_or(|(_, b)| rank > b) {
                best = Some((r, rank));
            }
        }
    }
    best.map(|(r, _)| r)
}

/// Every rule, in table order.
pub fn all() -> &'static [Rule] {
    RULES
}

use Stage::{Auth, Data, Ehlo, Greeting, Mail, Quit, Rcpt, Starttls};

const ANY_STAGE: &[Stage] = &[Greeting, Ehlo, Starttls, Auth, Mail, Rcpt, Data, Quit];
const SEND: &[Stage] = &[Mail, Rcpt, Data];
const FAIL: &[u8] = &[4, 5];

/// A rule with every criterion empty; the table fills in what it needs.
const fn base(
    id: &'static str,
    stages: &'static [Stage],
    code: CodeInfo,
    summary: &'static str,
) -> Rule {
    Rule {
        id,
        stages,
        enhanced: &[],
        basic: &[],
        words: &[],
        provider: None,
        class: &[],
        code,
        summary,
        fix: None,
    }
}

const APP_WORDS: &[&str] = &[
    "application-specific",
    "app password",
    "app-specific",
    "invalidsecondfactor",
];
/// Permanent AUTH refusals that servers without enhanced codes send with a telling text.
const AUTH_5XX: &[u16] = &[530, 534, 535, 550, 554];
const STARTTLS_WORDS: &[&str] = &["starttls", "tls", "encrypt", "secure"];
const AUTH_REQUIRED_WORDS: &[&str] = &[
    "authentication required",
    "not authenticated",
    "authentication is required",
    "must authenticate",
];
const RELAY_WORDS: &[&str] = &[
    "relay access denied",
    "relaying denied",
    "relay not permitted",
    "relaying disallowed",
    "unable to relay",
    "relay denied",
    "not permitted to relay",
];
const QUOTA_WORDS: &[&str] = &[
    "sending limit",
    "limit exceeded",
    "quota exceeded",
    "quotaexceeded",
    "rate limit",
    "ratelimit",
    "too many recipients",
    "too many messages",
    "sending quota",
    "message limit",
];
const SENDER_WORDS: &[&str] = &[
    "sender",
    "send as",
    "not owned",
    "relaying disallowed",
    "from address",
];

/// The table. Order only breaks ties between equally specific rules.
static RULES: &[Rule] = &[
    // RFC 5321 §3.8: 421 may come at any time and always closes the connection.
    Rule { basic: &[421], ..base("any.421", ANY_STAGE, c::SERVER_UNAVAILABLE, "{who} is unavailable and closed the connection at {at} ({tag}).") },
    Rule { class: FAIL, ..base("greeting.refused", &[Greeting], c::GREETING_REJECTED, "{who} refused the connection in its greeting ({tag}).") },
    Rule { class: FAIL, ..base("ehlo.refused", &[Ehlo], c::EHLO_REJECTED, "{who} rejected EHLO ({tag}).") },
    Rule { class: FAIL, ..base("starttls.refused", &[Starttls], c::STARTTLS_REJECTED, "{who} refused to start TLS ({tag}).") },
    // --- AUTH (RFC 4954 §6) ---
    // RFC 3207 §4 / RFC 4954 §6: 530 5.7.0 "Must issue a STARTTLS command first", 538
    // 5.7.11 "Encryption required for requested authentication mechanism".
    Rule { basic: &[538, 523], ..base("auth.encryption-required", &[Auth], c::AUTH_REQUIRES_TLS, "{who} refuses to authenticate before TLS ({tag}).") },
    Rule { enhanced: &[(7, 10), (7, 11)], ..base("auth.encryption-required-enhanced", &[Auth], c::AUTH_REQUIRES_TLS, "{who} refuses to authenticate before TLS ({tag}).") },
    Rule { basic: &[530], words: STARTTLS_WORDS, ..base("auth.starttls-first", &[Auth], c::AUTH_REQUIRES_TLS, "{who} refuses to authenticate before TLS ({tag}).") },
    // Microsoft's retirement reply (Exchange Team blog, 2026) and 5.7.139's Basic text.
    Rule { enhanced: &[(7, 30)], ..base("auth.basic-auth-not-supported", &[Auth], c::AUTH_BASIC_AUTH_DISABLED, "{who} no longer accepts a password for SMTP AUTH (Basic authentication is switched off): only OAuth works ({tag}).") },
    Rule { enhanced: &[(7, 139)], words: &["basic authentication is disabled"], ..base("auth.139-basic-disabled", &[Auth], c::AUTH_BASIC_AUTH_DISABLED, "{who} has Basic (password) authentication disabled for SMTP AUTH: only OAuth works ({tag}).") },
    Rule { basic: AUTH_5XX, words: &["basic authentication is not supported", "basic authentication is disabled"], ..base("auth.basic-auth-words", &[Auth], c::AUTH_BASIC_AUTH_DISABLED, "{who} no longer accepts a password for SMTP AUTH (Basic authentication is switched off): only OAuth works ({tag}).") },
    Rule { enhanced: &[(7, 139)], words: &["smtpclientauthentication"], ..base("auth.139-smtp-auth-disabled", &[Auth], c::AUTH_DISABLED_BY_PROVIDER, "{who} has SMTP AUTH disabled for this mailbox or tenant ({tag}).") },
    Rule { basic: AUTH_5XX, words: &["smtpclientauthentication is disabled"], ..base("auth.smtp-auth-disabled-words", &[Auth], c::AUTH_DISABLED_BY_PROVIDER, "{who} has SMTP AUTH disabled for this mailbox or tenant ({tag}).") },
    Rule { enhanced: &[(7, 139)], words: &["credentials were incorrect"], ..base("auth.139-wrong-password", &[Auth], c::AUTH_BAD_CREDENTIALS, "{who} rejected the user name or password: 'the user credentials were incorrect' ({tag}).") },
    Rule { enhanced: &[(7, 139)], words: &["did not meet the criteria"], ..base("auth.139-policy", &[Auth], c::AUTH_POLICY_BLOCKED, "{who} refused the sign-in because of an organisation's policy (Conditional Access, security defaults or MFA) ({tag}).") },
    Rule {
        enhanced: &[(7, 139)],
        fix: Some("5.7.139 has several meanings; the text says which: 'SmtpClientAuthentication is disabled' (an administrator enables SMTP AUTH for the mailbox), 'basic authentication is disabled' (only OAuth works), 'the user credentials were incorrect' (a wrong password), 'did not meet the criteria' (a Conditional Access or security-defaults policy)."),
        ..base("auth.139-other", &[Auth], c::AUTH_REJECTED, "{who} refused authentication with 5.7.139 for a reason its text does not name ({tag}).")
    },
    // RFC 5248 X.7.13 "User account disabled": the account, not SMTP AUTH.
    Rule { enhanced: &[(7, 13)], ..base("auth.account-disabled", &[Auth], c::AUTH_ACCOUNT_DISABLED, "{who} says this account is disabled ({tag}).") },
    Rule { basic: AUTH_5XX, words: &["account disabled", "account is disabled", "account has been disabled", "account suspended", "account is suspended"], ..base("auth.account-disabled-words", &[Auth], c::AUTH_ACCOUNT_DISABLED, "{who} says this account is disabled ({tag}).") },
    // Yahoo/AOL answer #AUTH005 on the *first* try with the account password.
    Rule { basic: &[535], words: &["#auth005"], ..base("auth.yahoo-auth005", &[Auth], c::AUTH_APP_PASSWORD_REQUIRED, "{who} refused the password with #AUTH005 ('Too many bad auth attempts'), which it also sends on the first try with an account password: it wants an app password ({tag}).") },
    Rule { words: &["too many"], ..base("auth.too-many", &[Auth], c::AUTH_TOO_MANY_ATTEMPTS, "{who} is throttling logins: too many attempts ({tag}).") },
    Rule { basic: &[535], words: &["too many"], ..base("auth.535-too-many", &[Auth], c::AUTH_TOO_MANY_ATTEMPTS, "{who} is throttling logins: too many attempts ({tag}).") },
    // Gmail 534 5.7.14 "Please log in via your web browser".
    Rule { enhanced: &[(7, 14)], ..base("auth.web-login", &[Auth], c::AUTH_WEB_LOGIN_REQUIRED, "{who} blocked the sign-in until you log in with a web browser ({tag}).") },
    Rule { words: &["web browser", "webloginrequired", "signin/continue"], ..base("auth.web-login-words", &[Auth], c::AUTH_WEB_LOGIN_REQUIRED, "{who} blocked the sign-in until you log in with a web browser ({tag}).") },
    // RFC 4954 §6: 432 4.7.12 "A password transition is needed".
    Rule {
        basic: &[432],
        fix: Some("Sign in on the provider's website, change the password as asked, then use the new one."),
        ..base("auth.password-transition", &[Auth], c::AUTH_WEB_LOGIN_REQUIRED, "{who} requires a password change before mail programs can log in ({tag}).")
    },
    Rule {
        enhanced: &[(7, 12)],
        fix: Some("Sign in on the provider's website, change the password as asked, then use the new one."),
        ..base("auth.password-transition-enhanced", &[Auth], c::AUTH_WEB_LOGIN_REQUIRED, "{who} requires a password change before mail programs can log in ({tag}).")
    },
    // Gmail 534 5.7.9 "Application-specific password required".
    Rule { enhanced: &[(7, 9)], words: APP_WORDS, ..base("auth.app-password", &[Auth], c::AUTH_APP_PASSWORD_REQUIRED, "{who} requires an app password for this account ({tag}).") },
    // RFC 4954 §6: 534 5.7.9 "Authentication mechanism is too weak" (Gmail reuses 5.7.9
    // for "Application-specific password required": the text tells them apart).
    Rule {
        enhanced: &[(7, 9)],
        words: &["weak", "mechanism"],
        fix: Some("Use a mechanism the server accepts (see its AUTH list), over TLS."),
        ..base("auth.mechanism-too-weak", &[Auth], c::AUTH_MECHANISM_UNSUPPORTED, "{who} considers the mechanism too weak ({tag}).")
    },
    Rule { enhanced: &[(7, 9)], ..base("auth.579", &[Auth], c::AUTH_APP_PASSWORD_REQUIRED, "{who} requires an app password for this account ({tag}).") },
    Rule { words: APP_WORDS, ..base("auth.app-password-words", &[Auth], c::AUTH_APP_PASSWORD_REQUIRED, "{who} requires an app password for this account ({tag}).") },
    Rule { basic: &[534], words: APP_WORDS, ..base("auth.534-app-password", &[Auth], c::AUTH_APP_PASSWORD_REQUIRED, "{who} requires an app password for this account ({tag}).") },
    Rule {
        basic: &[534],
        words: &["weak", "mechanism"],
        fix: Some("Use a mechanism the server accepts (see its AUTH list), over TLS."),
        ..base("auth.534-weak-mechanism", &[Auth], c::AUTH_MECHANISM_UNSUPPORTED, "{who} considers the mechanism too weak ({tag}).")
    },
    Rule { basic: &[534], ..base("auth.534", &[Auth], c::AUTH_APP_PASSWORD_REQUIRED, "{who} requires an app password for this account ({tag}).") },
    Rule { basic: &[535], ..base("auth.535", &[Auth], c::AUTH_BAD_CREDENTIALS, "{who} rejected the user name or password ({tag}).") },
    Rule { enhanced: &[(7, 8)], ..base("auth.bad-credentials", &[Auth], c::AUTH_BAD_CREDENTIALS, "{who} rejected the user name or password ({tag}).") },
    // RFC 4954 §4: 504 for an unknown mechanism.
    Rule { basic: &[504], ..base("auth.504", &[Auth], c::AUTH_MECHANISM_UNSUPPORTED, "{who} does not support the mechanism used ({tag}).") },
    Rule { basic: &[500, 502], ..base("auth.not-implemented", &[Auth], c::AUTH_NOT_OFFERED, "{who} does not implement AUTH here ({tag}).") },
    Rule { basic: &[503], ..base("auth.503", &[Auth], c::AUTH_PROTOCOL_VIOLATION, "{who} answered AUTH with 'bad sequence of commands' ({tag}).") },
    Rule { class: &[4], ..base("auth.temporary", &[Auth], c::AUTH_TEMPORARY_FAILURE, "{who} could not check the credentials right now ({tag}).") },
    Rule { class: &[5], ..base("auth.other", &[Auth], c::AUTH_REJECTED, "{who} refused authentication ({tag}).") },
    // --- MAIL, RCPT, DATA ---
    // Exim: "550 5.7.0 Must issue a STARTTLS command first" (RFC 3207 §4), also at MAIL.
    Rule { basic: &[530, 550, 554], words: &["starttls"], ..base("send.starttls-first", SEND, c::AUTH_REQUIRES_TLS, "{who} refuses {at} before TLS ({tag}).") },
    Rule { basic: &[530], ..base("send.530", SEND, c::SEND_AUTH_REQUIRED, "{who} requires authentication before {at} ({tag}).") },
    Rule { enhanced: &[(7, 57)], ..base("send.not-authenticated", SEND, c::SEND_AUTH_REQUIRED, "{who} requires authentication before {at} ({tag}).") },
    Rule { words: AUTH_REQUIRED_WORDS, ..base("send.auth-required-words", SEND, c::SEND_AUTH_REQUIRED, "{who} requires authentication before {at} ({tag}).") },
    Rule { basic: &[550, 553, 554], words: AUTH_REQUIRED_WORDS, ..base("send.5xx-auth-required-words", SEND, c::SEND_AUTH_REQUIRED, "{who} requires authentication before {at} ({tag}).") },
    // Microsoft 365 restricted senders: "550 5.1.8 Access denied, bad outbound sender".
    Rule { enhanced: &[(1, 8)], words: &["bad outbound sender"], ..base("send.outbound-sender-blocked", SEND, c::SEND_ACCOUNT_BLOCKED, "{who} has blocked this account from sending as a suspected spam sender ({tag}).") },
    // Outlook.com: new or unverified accounts (OutboundSpamException, HipNotify).
    Rule { words: &["outboundspamexception", "hipnotify"], ..base("send.outbound-spam-unverified", SEND, c::SEND_ACCOUNT_BLOCKED, "{who} refused to send for this account until it is verified on the web ({tag}).") },
    Rule { basic: &[550, 554], words: &["outboundspamexception", "hipnotify"], ..base("send.5xx-outbound-spam-unverified", SEND, c::SEND_ACCOUNT_BLOCKED, "{who} refused to send for this account until it is verified on the web ({tag}).") },
    // Amazon SES / SendGrid sender identities.
    Rule { basic: &[550, 554], words: &["email address is not verified", "verified sender identity"], ..base("send.identity-not-verified", SEND, c::SEND_SENDER_NOT_VERIFIED, "{who} refused {at}: the sender is not a verified identity of the sending account ({tag}).") },
    // RFC 3463 X.2.2 "Mailbox full" is the recipient's problem, not a sending limit.
    Rule { enhanced: &[(2, 2)], ..base("send.mailbox-full", SEND, c::SEND_RECIPIENT_REJECTED, "The recipient's mailbox is full ({tag}).") },
    Rule { words: &["mailbox full", "mailbox is full", "mailbox quota", "mailbox over quota"], ..base("send.mailbox-full-words", SEND, c::SEND_RECIPIENT_REJECTED, "The recipient's mailbox is full ({tag}).") },
    // X.5.3 too many recipients, X.4.5 congestion (Gmail 550 5.4.5 daily limit).
    Rule { enhanced: &[(5, 3), (4, 5)], ..base("send.limit", SEND, c::SEND_QUOTA_EXCEEDED, "{who} refused {at}: a sending limit was reached ({tag}).") },
    Rule { words: QUOTA_WORDS, ..base("send.limit-words", SEND, c::SEND_QUOTA_EXCEEDED, "{who} refused {at}: a sending limit was reached ({tag}).") },
    Rule { basic: &[550, 554, 451, 452, 421], words: QUOTA_WORDS, ..base("send.limit-basic-words", SEND, c::SEND_QUOTA_EXCEEDED, "{who} refused {at}: a sending limit was reached ({tag}).") },
    // RFC 1870 §6: 552 when the size exceeds the limit; X.3.4 / X.2.3 size codes.
    Rule { basic: &[552], ..base("send.552", SEND, c::SEND_MESSAGE_TOO_LARGE, "{who} refused the message as too large ({tag}).") },
    Rule { enhanced: &[(3, 4), (2, 3)], ..base("send.too-large", SEND, c::SEND_MESSAGE_TOO_LARGE, "{who} refused the message as too large ({tag}).") },
    Rule { words: &["too large", "too big", "size limit", "message size"], ..base("send.too-large-words", SEND, c::SEND_MESSAGE_TOO_LARGE, "{who} refused the message as too large ({tag}).") },
    Rule { basic: &[555, 501, 500], ..base("send.syntax", SEND, c::SEND_SYNTAX_ERROR, "{who} could not parse {at} ({tag}).") },
    Rule { enhanced: &[(5, 2), (5, 4), (1, 3), (1, 7)], ..base("send.syntax-enhanced", SEND, c::SEND_SYNTAX_ERROR, "{who} could not parse {at} ({tag}).") },
    // Microsoft 365 Send As: 5.7.60, 5.2.252 SendAsDenied (often after DATA).
    Rule { enhanced: &[(7, 60), (2, 252)], ..base("send.send-as-denied", SEND, c::SEND_SENDER_REJECTED, "{who} refused the message: this login may not send as that sender ({tag}).") },
    Rule { words: &["sendasdenied"], ..base("send.send-as-denied-words", SEND, c::SEND_SENDER_REJECTED, "{who} refused the message: this login may not send as that sender ({tag}).") },
    // "Relay access denied" answers RCPT, but it is about the sender: this server will
    // not carry mail for this client (not logged in, or not allowed to send as that
    // address) to another domain.
    Rule {
        basic: &[450, 451, 550, 551, 553, 554],
        words: RELAY_WORDS,
        fix: Some("Log in before sending (a user name and password), send from an address your account owns, and submit through your own provider's server on 587 or 465."),
        ..base("send.relay-denied", &[Rcpt], c::SEND_SENDER_REJECTED, "{who} refused to relay the message for this sender ({tag}).")
    },
    Rule { enhanced: &[(1, ANY)], ..base("send.mail-sender", &[Mail], c::SEND_SENDER_REJECTED, "{who} refused the sender address ({tag}).") },
    Rule { basic: &[550, 553], ..base("send.mail-550", &[Mail], c::SEND_SENDER_REJECTED, "{who} refused the sender address ({tag}).") },
    Rule { words: SENDER_WORDS, ..base("send.mail-sender-words", &[Mail], c::SEND_SENDER_REJECTED, "{who} refused the sender address ({tag}).") },
    Rule { words: SENDER_WORDS, ..base("send.data-sender-words", &[Data], c::SEND_SENDER_REJECTED, "{who} refused the message because of its sender ({tag}).") },
    Rule { enhanced: &[(1, ANY), (2, ANY)], ..base("send.rcpt-enhanced", &[Rcpt], c::SEND_RECIPIENT_REJECTED, "{who} refused the recipient ({tag}).") },
    Rule { basic: &[450, 550, 551, 553, 554], ..base("send.rcpt-basic", &[Rcpt], c::SEND_RECIPIENT_REJECTED, "{who} refused the recipient ({tag}).") },
    Rule { words: &["recipient", "relay", "user unknown", "mailbox"], ..base("send.rcpt-words", &[Rcpt], c::SEND_RECIPIENT_REJECTED, "{who} refused the recipient ({tag}).") },
    // Yahoo refuses a foreign From after DATA with a generic "mailbox unavailable".
    Rule { basic: &[550, 553, 554], words: &["mailbox unavailable"], provider: Some("yahoo"), class: &[5], ..base("yahoo.data-foreign-from", &[Data], c::SEND_SENDER_REJECTED, "{who} refused the message after DATA; Yahoo does this when the sender is not the account's own address ({tag}).") },
    Rule { class: FAIL, ..base("send.other", SEND, c::SEND_REJECTED, "{who} refused {at} ({tag}).") },
];

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A provider rule names a class and refines a generic rule of the same stage and
    /// class; so it cannot contradict the reply's class.
    #[test]
    fn provider_rules_refine_generic_ones() {
        for r in RULES.iter().filter(|r| r.provider.is_some()) {
            assert!(
                !r.class.is_empty(),
                "{}: provider rule without a class",
                r.id
            );
            assert!(
                crate::diagnosis::providers::by_name(r.provider.unwrap_or_default()).is_some(),
                "{}",
                r.id
            );
            let refined = RULES.iter().any(|g| {
                g.provider.is_none()
                    && g.stages.iter().any(|s| r.stages.contains(s))
                    && g.class.iter().any(|c| r.class.contains(c))
            });
            assert!(refined, "{}: refines no generic rule", r.id);
        }
    }

    #[test]
    fn ids_are_unique_and_fixes_name_no_flag() {
        for (i, r) in RULES.iter().enumerate() {
            assert!(RULES[i + 1..].iter().all(|o| o.id != r.id), "{}", r.id);
            assert!(!r.stages.is_empty(), "{}", r.id);
            for w in r.words {
                assert_eq!(*w, w.to_lowercase(), "{}: key words are lower case", r.id);
            }
            if let Some(f) = r.fix {
                crate::diagnosis::providers::tests::assert_no_flag(f, r.id);
            }
        }
    }
}
