//! Diagnosis: one typed [`Failure`] (or none) in, one [`Diagnosis`] out.
//!
//! [`diagnose`] is the only place that maps failures to codes (DESIGN habit 4). The code is
//! chosen from what the protocol guarantees — the failure variant, the stage, the reply
//! code (RFC 5321 §4.2), the enhanced status code (RFC 3463) — and, where those are not
//! enough, from short *stable key words* in the reply text, never from a whole sentence:
//! providers reword their replies (Gmail went from "Learn more at" to "For more
//! information, go to") and whitespace varies. The provider recognised from host and
//! banner only tailors the fix and hints, it never picks the code.

pub(crate) mod annotate;
pub mod codes;
pub(crate) mod credential;
pub mod explain;
pub mod providers;
pub mod rules;
pub(crate) mod status;

pub use annotate::{annotate, Annotator};
pub use codes::{Code, CodeInfo};
pub use credential::CredentialShape;
pub use explain::{explain, ExplainError};
pub use providers::Provider;

use crate::failure::{
    CertSummary, ConnectAttempt, ConnectErrorKind, DnsErrorKind, Failure, TlsFailure,
    TlsFailureKind,
};
use crate::protocol::{sasl, Reply};
use crate::stage::Stage;
use crate::tls_mode::TlsMode;
use crate::transcript::{Direction, Entry};
use codes as c;
use serde::Serialize;

/// What the check knew besides the failure: where it connected and with what.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Context<'a> {
    /// The host name as given by the user.
    pub host: &'a str,
    /// The port.
    pub port: u16,
    /// The TLS mode used.
    pub mode: TlsMode,
    /// The greeting text (first line of the 220, without the code) when one arrived, as
    /// received: it is escaped here before it is shown.
    pub banner: Option<&'a str>,
    /// The user name; `None` when no `--user` was given (authentication not tested).
    pub user: Option<&'a str>,
    /// The shape of the password, when one was given.
    pub credential: Option<&'a CredentialShape>,
    /// True when `--to` was given and the message was accepted.
    pub sent_message: bool,
    /// The SASL mechanism used for AUTH (`PLAIN`, `XOAUTH2`, …), when AUTH was attempted.
    pub mechanism: Option<&'a str>,
    /// The envelope sender (`--from`), when a message was sent.
    pub from: Option<&'a str>,
    /// True when a TLS handshake completed with a certificate verified for `host`: then
    /// the server is that host whatever its banner says (no interception on banner text
    /// alone).
    pub tls_verified: bool,
    /// The transcript so far (used to find e.g. an OAuth error challenge); may be empty.
    pub transcript: &'a [Entry],
}

impl<'a> Context<'a> {
    /// A context with only the connection parameters; set the other fields as known.
    pub fn new(host: &'a str, port: u16, mode: TlsMode) -> Self {
        Context {
            host,
            port,
            mode,
            banner: None,
            user: None,
            credential: None,
            sent_message: false,
            mechanism: None,
            from: None,
            tls_verified: false,
            transcript: &[],
        }
    }
}

/// The verdict of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Diagnosis {
    /// A stable code from [`codes::all`], e.g. `auth.bad-credentials`.
    pub code: Code,
    /// One sentence: what happened, with the specifics (host, port, reply code).
    pub summary: String,
    /// The evidence: the escaped reply line(s), or the connect/TLS detail.
    pub evidence: Option<String>,
    /// What to do, tailored to the provider when one was recognised.
    pub fix: String,
    /// Further observations (credential shape, interception, IPv6, other port), most
    /// important first.
    pub hints: Vec<String>,
    /// The provider recognised from host and banner (`gmail`, …), if any.
    pub provider: Option<&'static str>,
    /// The id of the rule in [`rules`] that chose the code, when a reply did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
}

impl Diagnosis {
    /// The registry entry for this diagnosis's code (always there: a [`Code`] only
    /// comes from the registry; `Option` for the callers written before [`Code`]).
    pub fn info(&self) -> Option<&'static CodeInfo> {
        Some(self.code.info())
    }
}

/// Intermediate result of classification, before provider tailoring.
struct Draft {
    info: CodeInfo,
    summary: String,
    evidence: Option<String>,
    /// A fix specific to this situation (overrides provider and generic fix).
    fix: Option<String>,
    hints: Vec<String>,
    /// The rule that chose the code, for reply failures.
    rule: Option<&'static str>,
}

impl Draft {
    fn new(info: CodeInfo, summary: impl Into<String>) -> Self {
        Draft {
            info,
            summary: summary.into(),
            evidence: None,
            fix: None,
            hints: Vec::new(),
            rule: None,
        }
    }
    fn evidence(mut self, e: impl Into<String>) -> Self {
        let e = e.into();
        if !e.is_empty() {
            self.evidence = Some(e);
        }
        self
    }
    fn fix(mut self, f: impl Into<String>) -> Self {
        self.fix = Some(f.into());
        self
    }
    fn hint(mut self, h: impl Into<String>) -> Self {
        self.hints.push(h.into());
        self
    }
}

/// Maps a finished check to its diagnosis. `None` means every tested step succeeded.
pub fn diagnose(failure: Option<&Failure>, ctx: &Context) -> Diagnosis {
    let provider = recognised(ctx);
    let draft = match failure {
        None => ok(ctx),
        Some(f) => classify(f, ctx, provider),
    };
    finish(draft, ctx, provider)
}

/// Tailors the fix to the provider and adds hints that apply to any failure.
fn finish(mut d: Draft, ctx: &Context, provider: Option<&'static Provider>) -> Diagnosis {
    let code = d.info.code;
    // A certificate verified for the host proves who answered; a banner alone does not.
    let intercepted =
        providers::banner_mismatch(ctx.host, ctx.banner).filter(|_| !ctx.tls_verified);
    // The provider's advice is about the provider's server; when someone else answered,
    // it would send the user chasing app passwords that server never checks.
    let provider_fix = provider
        .filter(|_| intercepted.is_none())
        .and_then(|p| p.fix_for(code.as_str()));
    let mut hints = Vec::new();
    // Interception first: if someone else answered, every other advice is secondary. Also
    // on success: the login and the mail then went to that server, not to the provider.
    if let Some(p) = intercepted {
        if code != c::OK.code && !d.summary.contains("interception") {
            d.summary.push_str(&format!(
                " The server that answered is not {}: see the first hint.",
                p.display_name
            ));
        }
        hints.push(format!(
            "The server that answered does not look like {} (its greeting: \"{}\"). Your hosting provider or network is probably redirecting port {} to its own mail server, so your login and mail go there, not to {}. Ask the hosting provider to allow direct outgoing SMTP (cPanel/WHM: disable 'SMTP Restrictions').",
            p.display_name,
            crate::protocol::escape_str(ctx.banner.unwrap_or_default()),
            ctx.port,
            p.display_name
        ));
    }
    let fix = match (d.fix, provider_fix) {
        (Some(specific), Some(pf)) => {
            if let Some(p) = provider {
                hints.push(format!("{}: {pf}", p.display_name));
            }
            specific
        }
        (Some(specific), None) => specific,
        (None, Some(pf)) => pf.to_owned(),
        (None, None) => d.info.fix.to_owned(),
    };
    hints.extend(d.hints);
    if provider.is_none() && code != c::OK.code {
        if let Some(sw) = providers::server_software(ctx.banner) {
            for f in &sw.facts {
                hints.push(f.text.clone());
            }
        }
    }
    if let Some(p) = providers::by_mail_domain(ctx.host) {
        if code != c::OK.code {
            hints.push(format!(
                "{} is {}'s mail domain, not its submission server: use {}.",
                ctx.host,
                p.display_name,
                p.settings_line()
            ));
        }
    }
    if is_credential_code(code) {
        let judged_by = provider.filter(|_| intercepted.is_none());
        hints.extend(credential_hints(ctx, judged_by, provider_fix.is_some()));
    }
    if is_connection_code(code) {
        if let Some(p) = provider {
            hints.push(format!(
                "{} settings: {}.",
                p.display_name,
                p.settings_line()
            ));
        }
    }
    Diagnosis {
        code,
        summary: d.summary,
        evidence: d.evidence,
        fix,
        hints,
        provider: provider.map(|p| p.name.as_str()),
        rule: d.rule,
    }
}

fn is_credential_code(code: Code) -> bool {
    [
        c::AUTH_BAD_CREDENTIALS.code,
        c::AUTH_APP_PASSWORD_REQUIRED.code,
        c::AUTH_TOO_MANY_ATTEMPTS.code,
    ]
    .contains(&code)
}

fn is_connection_code(code: Code) -> bool {
    [
        c::CONNECT_REFUSED.code,
        c::CONNECT_TIMEOUT.code,
        c::TLS_IMPLICIT_ON_STARTTLS_PORT.code,
        c::TLS_STARTTLS_ON_IMPLICIT_PORT.code,
        c::SERVER_TIMEOUT.code,
        c::AUTH_REQUIRES_TLS.code,
        c::AUTH_PLAINTEXT_REFUSED.code,
        c::STARTTLS_NOT_OFFERED.code,
    ]
    .contains(&code)
}

/// Observations about user name and password shape; never reveals the password.
///
/// `fix_is_specific`: the provider's own fix text is shown, which already says how to get
/// an app password, so the hint does not repeat it.
fn credential_hints(
    ctx: &Context,
    provider: Option<&'static Provider>,
    fix_is_specific: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(user) = ctx.user {
        if let Some(p) = provider {
            if p.username.form == providers::UsernameForm::FullAddress && !user.contains('@') {
                out.push(format!(
                    "The user name {user:?} has no @: {} expects your full email address as the user name.",
                    p.display_name
                ));
            }
        }
        if user != user.trim() {
            out.push("The user name starts or ends with whitespace.".into());
        }
    }
    let Some(shape) = ctx.credential else {
        return out;
    };
    if shape.empty {
        out.push("The password is empty.".into());
        return out;
    }
    if shape.contains_newline {
        out.push("The password contains a line break: if it was read from a file or an environment variable, strip the trailing newline.".into());
    } else if shape.outer_whitespace {
        out.push(
            "The password starts or ends with whitespace (a copy-and-paste leftover?).".into(),
        );
    }
    if shape.non_ascii {
        out.push("The password contains non-ASCII characters; app passwords never do, and some servers compare passwords in another encoding.".into());
    }
    if let Some(p) = provider {
        if let Some(ap) = &p.app_password {
            if let Some(n) = ap.letters {
                if shape.looks_like_app_password(n) {
                    out.push(format!(
                        "The password has the form of a {} app password; if it still fails, it was revoked or mistyped: create a new one.",
                        p.display_name
                    ));
                } else {
                    let how = if fix_is_specific { "" } else { ap.how.as_str() };
                    out.push(format!(
                        "This does not look like a {} app password ({n} letters; the spaces or hyphens between groups do not matter): it is probably your account password. {how}",
                        p.display_name
                    ).trim_end().to_owned());
                }
            }
        }
    }
    out
}

/// The provider whose advice applies: by host, the user's address, then the banner.
fn recognised(ctx: &Context) -> Option<&'static Provider> {
    providers::recognise_for(ctx.host, ctx.banner, ctx.user.or(ctx.from))
}

/// The host, with the provider recognised from host and banner: `smtp.gmail.com (Gmail)`.
fn host_and_provider(ctx: &Context) -> String {
    match recognised(ctx) {
        Some(p) => format!("{} ({})", ctx.host, p.display_name),
        None => ctx.host.to_owned(),
    }
}

fn ok(ctx: &Context) -> Draft {
    let tls = match ctx.mode {
        TlsMode::Starttls => "upgraded the connection with STARTTLS",
        TlsMode::Implicit => "used TLS from the first byte",
        TlsMode::None => "used no TLS",
    };
    let auth = match ctx.user {
        Some(u) => format!("logged in as {u}"),
        None => "authentication was not tested (no user name given)".to_owned(),
    };
    let mut summary = format!("{}:{} greeted, {tls}, {auth}", ctx.host, ctx.port);
    if ctx.sent_message {
        summary.push_str(", and accepted the test message for delivery");
    }
    summary.push('.');
    let mut d = Draft::new(c::OK, summary);
    if let (true, Some(p), Some(from), Some(user)) =
        (ctx.sent_message, recognised(ctx), ctx.from, ctx.user)
    {
        let foreign = !from.trim().eq_ignore_ascii_case(user.trim());
        for n in &p.success_notes {
            if n.when == providers::NoteWhen::ForeignFrom && foreign {
                d = d.hint(n.text.clone());
            }
        }
    }
    if ctx.mode == TlsMode::None {
        d = d.hint("The connection was not encrypted: use STARTTLS (587) or implicit TLS (465) for real mail.");
    }
    d
}

fn classify(f: &Failure, ctx: &Context, provider: Option<&'static Provider>) -> Draft {
    if let Some(d) = auth_setup(f, ctx) {
        return d;
    }
    match f {
        Failure::Dns { kind, detail } => dns(*kind, detail, ctx),
        Failure::Connect { attempts } => connect(attempts, ctx),
        Failure::Tls(t) => tls(t, ctx),
        Failure::TlsExpectedByServer => Draft::new(
            c::TLS_STARTTLS_ON_IMPLICIT_PORT,
            format!(
                "Port {} expects TLS from the first byte: it sent no greeting to a plain connection, and a second connection with implicit TLS was answered.",
                ctx.port
            ),
        )
        .fix(format!(
            "Use implicit TLS on port {} (the TLS mode implicit TLS, 'SSL/TLS' in mail programs), or port 587 with STARTTLS.",
            ctx.port
        )),
        Failure::Timeout { stage } => timeout(*stage, ctx),
        Failure::Closed { stage, partial } => closed(*stage, partial.as_deref(), ctx),
        Failure::Malformed { stage, error } => {
            let ev = error.to_string();
            let mut d = Draft::new(
                c::PROTOCOL_MALFORMED_REPLY,
                format!("{}:{} answered at {} with bytes that are not an SMTP reply.", ctx.host, ctx.port, stage_name(*stage)),
            )
            .evidence(ev.clone());
            if let Some(what) = foreign_protocol(error) {
                d = d.hint(format!("That looks like {what}, not an SMTP server: check the host and port."));
            }
            d
        }
        Failure::Reply { stage, reply } => reply_failure(*stage, reply, ctx, provider),
        Failure::StartTlsNotOffered => {
            let mut d = Draft::new(
                c::STARTTLS_NOT_OFFERED,
                format!("{} did not offer STARTTLS on port {}, so the connection cannot be encrypted there.", host_and_provider(ctx), ctx.port),
            );
            if provider.is_some() {
                d = d.hint("This provider always offers STARTTLS on its submission port: something between you and it (a firewall with SMTP inspection, or a hosting provider's redirect) removed it.");
            }
            d
        }
        Failure::StartTlsInjection { bytes } => Draft::new(
            c::STARTTLS_INJECTION,
            "Bytes arrived after the server's 220 to STARTTLS and before the TLS handshake; they were discarded and no credentials were sent.",
        )
        .evidence(bytes.clone()),
        Failure::Unsolicited { stage, bytes } => Draft::new(
            c::PROTOCOL_UNEXPECTED_REPLY,
            format!("{} sent data at {} that no command asked for.", host_and_provider(ctx), stage_name(*stage)),
        )
        .evidence(bytes.clone()),
        other => parity(other, ctx),
    }
}

/// AUTH could not be tried or went wrong before a verdict on the credentials: not
/// offered, no usable mechanism, plaintext refused, the OAuth token or the exchange
/// itself. `None` for every other failure.
fn auth_setup(f: &Failure, ctx: &Context) -> Option<Draft> {
    let d = match f {
        Failure::AuthNotOffered {
            tls: false,
            starttls_offered: true,
        } => Draft::new(
            c::AUTH_REQUIRES_TLS,
            format!("{} offers AUTH only after STARTTLS: it did not announce AUTH on the unencrypted connection.", host_and_provider(ctx)),
        )
        .fix("Turn on STARTTLS (the TLS mode STARTTLS on 587) or use implicit TLS on 465; never send the password in clear."),
        Failure::AuthNotOffered { tls, .. } => {
            let mut d = if *tls {
                Draft::new(c::AUTH_NOT_OFFERED, format!("{} did not offer AUTH, even after TLS.", host_and_provider(ctx)))
            } else {
                Draft::new(c::AUTH_NOT_OFFERED, format!("{} did not offer AUTH on the unencrypted connection.", host_and_provider(ctx)))
                    .fix("Most servers announce AUTH only after TLS: use the TLS mode STARTTLS on 587 or the TLS mode implicit TLS on 465.")
            };
            if ctx.port == 25 {
                d = d.hint("Port 25 is for server-to-server mail (MX); mail programs submit on 587 or 465 with a login.");
            }
            d
        }
        Failure::MechanismUnsupported { wanted, offered } => {
            let list = if offered.is_empty() { "nothing".to_owned() } else { offered.join(" ") };
            let summary = match wanted {
                Some(w) => format!("{} does not offer the {w} mechanism; it offers: {list}.", host_and_provider(ctx)),
                None => format!("{} offers no mechanism smtprobe can use; it offers: {list}.", host_and_provider(ctx)),
            };
            Draft::new(c::AUTH_MECHANISM_UNSUPPORTED, summary)
        }
        Failure::PlaintextAuthRefused => Draft::new(
            c::AUTH_PLAINTEXT_REFUSED,
            format!("The connection to {}:{} is not encrypted, so smtprobe did not send the password.", ctx.host, ctx.port),
        ),
        Failure::OAuthRejected { challenge, reply } => Draft::new(
            c::AUTH_OAUTH_TOKEN_REJECTED,
            format!("{} rejected the OAuth token: {challenge}.", host_and_provider(ctx)),
        )
        .evidence(reply.display_lines().join("\n"))
        .fix("Get a fresh access token with the mail scope (for Google: https://mail.google.com/), check it belongs to the account in the user name setting, and pass it with the OAuth token setting."),
        Failure::AuthProtocol { reply, reason } => {
            if let Some(json) = oauth_error_challenge(reply) {
                return Some(Draft::new(
                    c::AUTH_OAUTH_TOKEN_REJECTED,
                    format!("{} rejected the OAuth token: {json}.", host_and_provider(ctx)),
                )
                .evidence(reply.display_lines().join("\n")));
            }
            Draft::new(
                c::AUTH_PROTOCOL_VIOLATION,
                format!("{} broke the AUTH exchange: {reason} ({}).", host_and_provider(ctx), code_tag(reply)),
            )
            .evidence(reply.display_lines().join("\n"))
        }
        _ => return None,
    };
    Some(d)
}

/// SCRAM, HELO-only, message checks and proxies (issue 13), kept in one place.
fn parity(f: &Failure, ctx: &Context) -> Draft {
    use crate::proxy::ProxyFailureKind as P;
    match f {
        Failure::ScramServerUnverified { error, reply } => Draft::new(
            c::AUTH_SERVER_NOT_VERIFIED,
            format!("{} did not prove it knows the password: {error}.", host_and_provider(ctx)),
        )
        .evidence(reply.display_lines().join("\n")),
        Failure::NotEsmtp { needed } => Draft::new(
            c::EHLO_NOT_ESMTP,
            format!("{} refused EHLO and accepted HELO: it does not speak ESMTP, so {needed} is impossible.", host_and_provider(ctx)),
        ),
        Failure::MessageTooLarge { size, limit } => Draft::new(
            c::SEND_MESSAGE_TOO_LARGE,
            format!("The message is {size} bytes but {} announced SIZE {limit}: it was not sent.", host_and_provider(ctx)),
        ),
        Failure::ExtensionNotOffered { extension, why } => Draft::new(
            c::SEND_EXTENSION_NOT_OFFERED,
            format!("{why}, but {} did not announce {extension}: the message was not sent.", host_and_provider(ctx)),
        ),
        Failure::Proxy(p) => {
            let (code, what) = match p.kind {
                P::Unreachable => (c::PROXY_UNREACHABLE, "could not be reached"),
                P::AuthFailed => (c::PROXY_AUTH_FAILED, "refused the proxy credentials"),
                P::DestinationRefused => (c::PROXY_DESTINATION_REFUSED, "could not reach the mail server"),
                P::Protocol | P::Timeout => (c::PROXY_PROTOCOL_ERROR, "did not answer as a proxy"),
            };
            Draft::new(code, format!("The proxy {} {what} ({}:{} was not tried directly).", p.proxy, ctx.host, ctx.port))
                .evidence(p.detail.clone())
        }
        _ => Draft::new(c::PROTOCOL_UNEXPECTED_REPLY, "unexpected failure"),
    }
}

fn dns(kind: DnsErrorKind, detail: &str, ctx: &Context) -> Draft {
    match kind {
        DnsErrorKind::NoSuchHost => {
            let suggestions = providers::suggest_hosts(ctx.host);
            let mut d = Draft::new(c::DNS_NO_SUCH_HOST, format!("The host name {} does not exist in DNS.", ctx.host))
                .evidence(detail);
            if let Some(first) = suggestions.first() {
                d = d.fix(format!("Did you mean {first}? Check the spelling of the host name."));
            }
            d
        }
        DnsErrorKind::LookupFailed => Draft::new(
            c::DNS_LOOKUP_FAILED,
            format!("The DNS lookup for {} failed; the name may be fine, but the resolver did not answer.", ctx.host),
        )
        .evidence(detail),
    }
}

/// RFC 6409 / RFC 8314 ports and the one to try instead.
fn alternative_port(port: u16) -> Option<(u16, TlsMode)> {
    match port {
        587 => Some((465, TlsMode::Implicit)),
        465 => Some((587, TlsMode::Starttls)),
        25 => Some((587, TlsMode::Starttls)),
        _ => None,
    }
}

fn connect(attempts: &[ConnectAttempt], ctx: &Context) -> Draft {
    let failed: Vec<&ConnectAttempt> = attempts.iter().filter(|a| a.error.is_some()).collect();
    let v4: Vec<&ConnectAttempt> = failed
        .iter()
        .copied()
        .filter(|a| a.addr.is_ipv4())
        .collect();
    let v6: Vec<&ConnectAttempt> = failed
        .iter()
        .copied()
        .filter(|a| a.addr.is_ipv6())
        .collect();
    let v6_unreachable = !v6.is_empty()
        && v6
            .iter()
            .all(|a| a.error == Some(ConnectErrorKind::Unreachable));
    // IPv6 "network unreachable" only says this machine has no IPv6; the verdict comes
    // from what IPv4 did.
    let ipv6_hint = v6_unreachable && !v4.is_empty();
    let judged = if ipv6_hint { &v4 } else { &failed };
    let kind = judge(judged);
    let evidence = attempts
        .iter()
        .map(|a| match a.error {
            Some(_) => format!("{}: {} ({:.0} ms)", a.addr, a.detail, a.ms),
            None => format!("{}: connected", a.addr),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let n = judged.len();
    let family = if ipv6_hint { "IPv4 " } else { "" };
    let addrs = if n == 1 {
        format!("its {family}address")
    } else {
        format!("all {n} {family}addresses")
    };
    let target = format!("{}:{}", ctx.host, ctx.port);
    let mut d = match kind {
        Some(ConnectErrorKind::Refused) => Draft::new(
            c::CONNECT_REFUSED,
            format!(
                "{target} refused the connection on {addrs}: most likely nothing listens on port {} there (no server running, or the wrong port or host){}.",
                ctx.port,
                if judged.iter().all(|a| a.addr.ip().is_loopback()) {
                    " — this is this machine itself, so start the server or check its port"
                } else {
                    "; less often a firewall rejects it"
                }
            ),
        ),
        Some(ConnectErrorKind::Timeout) => Draft::new(
            c::CONNECT_TIMEOUT,
            format!("Connecting to {target} timed out: nothing answered on {addrs}."),
        ),
        Some(ConnectErrorKind::Unreachable) => Draft::new(
            c::CONNECT_UNREACHABLE,
            format!("{target} is unreachable from this machine."),
        ),
        Some(ConnectErrorKind::Other) | None => {
            if attempts.is_empty() {
                Draft::new(
                    c::CONNECT_UNREACHABLE,
                    format!("{} resolved to no address to connect to.", ctx.host),
                )
            } else {
                Draft::new(
                    c::CONNECT_UNREACHABLE,
                    format!("Could not connect to {target} (see the errors below)."),
                )
            }
        }
    }
    .evidence(evidence);
    if matches!(
        kind,
        Some(ConnectErrorKind::Timeout | ConnectErrorKind::Refused)
    ) {
        if let Some((alt, mode)) = alternative_port(ctx.port) {
            let verb = if kind == Some(ConnectErrorKind::Timeout) {
                "timed out"
            } else {
                "was refused"
            };
            d = d.fix(format!(
                "Port {} {verb}: many hosting providers and clouds block outgoing mail ports (25, 465, 587). Try port {alt} with {} (the port setting {alt}, {}); if that fails too, ask your provider to unblock outgoing SMTP or use their relay.",
                ctx.port,
                providers::mode_label(mode),
                crate::setting::tls_mode(mode)
            ));
        }
        if ctx.port == 25 {
            d = d.hint("Port 25 is for server-to-server mail and most residential and cloud networks block it; submit on 587 or 465.");
        }
    }
    if ipv6_hint {
        d = d.hint("The IPv6 addresses are unreachable (this network has no IPv6 route); use the IPv4-only setting and keep the output focused.");
    }
    d
}

/// The verdict over a set of failed attempts: all refused → refused; any timeout →
/// timeout; all unreachable → unreachable; else refused if any, else other.
fn judge(set: &[&ConnectAttempt]) -> Option<ConnectErrorKind> {
    let is = |k: ConnectErrorKind| move |a: &&ConnectAttempt| a.error == Some(k);
    if set.is_empty() {
        None
    } else if set.iter().all(is(ConnectErrorKind::Refused)) {
        Some(ConnectErrorKind::Refused)
    } else if set.iter().any(is(ConnectErrorKind::Timeout)) {
        Some(ConnectErrorKind::Timeout)
    } else if set.iter().all(is(ConnectErrorKind::Unreachable)) {
        Some(ConnectErrorKind::Unreachable)
    } else if set.iter().any(is(ConnectErrorKind::Refused)) {
        Some(ConnectErrorKind::Refused)
    } else {
        Some(ConnectErrorKind::Other)
    }
}

/// True when a certificate SAN (possibly a `*.` wildcard, RFC 6125 §6.4.3) covers `host`.
fn san_covers(san: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if san.eq_ignore_ascii_case(host) {
        return true;
    }
    match (san.strip_prefix("*."), host.split_once('.')) {
        (Some(suffix), Some((label, rest))) => {
            !label.is_empty() && rest.eq_ignore_ascii_case(suffix)
        }
        _ => false,
    }
}

fn cert_evidence(cert: &CertSummary) -> String {
    let mut parts = vec![
        format!("subject: {}", cert.subject),
        format!("issuer: {}", cert.issuer),
    ];
    if !cert.sans.is_empty() {
        parts.push(format!("names: {}", cert.sans.join(", ")));
    }
    if !cert.not_before.is_empty() || !cert.not_after.is_empty() {
        parts.push(format!("valid: {} to {}", cert.not_before, cert.not_after));
    }
    parts.join("\n")
}

/// The certificate's common name or organisation, for "issued by X".
fn short_name(dn: &str) -> &str {
    for key in ["CN=", "O="] {
        if let Some(part) = dn
            .split([',', '/'])
            .map(str::trim)
            .find(|p| p.starts_with(key))
        {
            return &part[key.len()..];
        }
    }
    dn
}

fn tls(t: &TlsFailure, ctx: &Context) -> Draft {
    let host_provider = providers::all().iter().find(|p| p.matches_host(ctx.host));
    let when = if t.after_starttls {
        "after STARTTLS"
    } else {
        "at connect (implicit TLS)"
    };
    let d = match &t.kind {
        // After a 220 to STARTTLS the port plainly speaks STARTTLS: clear text in place
        // of the handshake is the server talking past its 220 (RFC 3207 §5), not a
        // mode mix-up.
        TlsFailureKind::ClearTextReply { first_line } if t.after_starttls => Draft::new(
            c::STARTTLS_INJECTION,
            format!(
                "{} agreed to STARTTLS, then answered the TLS hello in clear text with \"{first_line}\"; the connection was abandoned and no credentials were sent.",
                host_and_provider(ctx)
            ),
        )
        .evidence(first_line.clone()),
        TlsFailureKind::ClearTextReply { first_line } => Draft::new(
            c::TLS_IMPLICIT_ON_STARTTLS_PORT,
            format!(
                "Port {} speaks STARTTLS (or plain SMTP), not implicit TLS: it answered the TLS hello in clear text with \"{first_line}\".",
                ctx.port
            ),
        )
        .evidence(first_line.clone())
        .fix(format!(
            "Use STARTTLS on port {} (the TLS mode STARTTLS, 'STARTTLS' in mail programs), or port 465 with implicit TLS.",
            ctx.port
        )),
        TlsFailureKind::UntrustedIssuer | TlsFailureKind::BadCertificate { .. } => {
            untrusted(t, ctx, host_provider)
        }
        TlsFailureKind::Expired | TlsFailureKind::NotYetValid => not_valid_now(t, ctx),
        TlsFailureKind::NameMismatch => name_mismatch(t, ctx, host_provider),
        TlsFailureKind::Handshake { detail } => Draft::new(
            c::TLS_HANDSHAKE_FAILED,
            format!("The TLS handshake with {}:{} failed {when}: {detail}.", ctx.host, ctx.port),
        ),
        TlsFailureKind::ClientCertificateRequired => Draft::new(
            c::TLS_CLIENT_CERTIFICATE_REQUIRED,
            format!(
                "{}:{} requires a client certificate {when} and none was presented: it ended the handshake with the TLS alert certificate_required. The server is not refusing your IP address; it wants a certificate.",
                ctx.host, ctx.port
            ),
        )
        .evidence("TLS alert received: certificate_required (RFC 8446 §6.2)"),
        TlsFailureKind::VersionTooOld { offered } => {
            let what = match offered {
                Some(v) => format!("offers only {v}"),
                None => "answered with the TLS alert protocol_version: it offers only a version older than TLS 1.2".to_owned(),
            };
            Draft::new(
                c::TLS_VERSION_TOO_OLD,
                format!(
                    "{}:{} {what} {when}; TLS 1.0 and 1.1 are deprecated (RFC 8996) and refused.",
                    ctx.host, ctx.port
                ),
            )
            .evidence(match offered {
                Some(v) => format!("ServerHello version: {v}"),
                None => "TLS alert received: protocol_version".to_owned(),
            })
        }
        TlsFailureKind::Alert { alert } => Draft::new(
            c::TLS_ALERT_RECEIVED,
            format!(
                "{}:{} refused the TLS handshake {when} with the alert {alert}: it speaks TLS on this port, so waiting longer will not help.",
                ctx.host, ctx.port
            ),
        )
        .evidence(format!("TLS alert received: {alert}")),
        TlsFailureKind::ClosedDuringHandshake => {
            let mut d = Draft::new(
                c::TLS_HANDSHAKE_FAILED,
                format!("{}:{} closed the connection during the TLS handshake {when}.", ctx.host, ctx.port),
            );
            if !t.after_starttls && matches!(ctx.port, 25 | 587) {
                d = d.hint(format!("Port {} usually speaks STARTTLS, not implicit TLS: try the TLS mode STARTTLS.", ctx.port));
            }
            d
        }
    };
    finish_tls(d, t, ctx)
}

/// The certificate does not chain to a trusted root (self-signed, unknown issuer, or
/// another verification failure): on a provider's host, interception.
fn untrusted(t: &TlsFailure, ctx: &Context, host_provider: Option<&Provider>) -> Draft {
    let cert = t.certificate.as_ref();
    let issuer = cert.map(|c| short_name(&c.issuer).to_owned());
    let self_signed = cert.is_some_and(|c| !c.issuer.is_empty() && c.issuer == c.subject);
    let mut s = match (&issuer, self_signed) {
        (_, true) => format!(
            "The certificate of {} is self-signed, so it cannot be verified",
            ctx.host
        ),
        (Some(i), false) => format!(
            "The certificate of {} was issued by {i:?}, which is not a trusted authority",
            ctx.host
        ),
        (None, false) => format!("The certificate of {} is not trusted", ctx.host),
    };
    if let TlsFailureKind::BadCertificate { detail } = &t.kind {
        s.push_str(&format!(" ({detail})"));
    }
    s.push('.');
    let mut d = Draft::new(c::TLS_UNTRUSTED_CERTIFICATE, s);
    if let Some(p) = host_provider {
        d.summary.push_str(&format!(
            " {} always uses publicly trusted certificates, so this looks like interception: antivirus mail scanning, a corporate proxy or your hosting provider answered instead.",
            p.display_name
        ));
    }
    d
}

/// The certificate is outside its validity dates (expired, or not valid yet: the
/// clock).
fn not_valid_now(t: &TlsFailure, ctx: &Context) -> Draft {
    let cert = t.certificate.as_ref();
    let s = match t.kind {
        TlsFailureKind::NotYetValid => match cert
            .map(|c| c.not_before.as_str())
            .filter(|s| !s.is_empty())
        {
            Some(date) => format!(
                "The certificate of {} is not valid before {date}: check this machine's clock.",
                ctx.host
            ),
            None => format!(
                "The certificate of {} is not valid yet: check this machine's clock.",
                ctx.host
            ),
        },
        _ => match cert.map(|c| c.not_after.as_str()).filter(|s| !s.is_empty()) {
            Some(date) => format!("The certificate of {} expired on {date}.", ctx.host),
            None => format!("The certificate of {} has expired.", ctx.host),
        },
    };
    Draft::new(c::TLS_EXPIRED_CERTIFICATE, s)
}

/// The certificate is for other names: on a provider's host, interception.
fn name_mismatch(t: &TlsFailure, ctx: &Context, host_provider: Option<&Provider>) -> Draft {
    let cert = t.certificate.as_ref();
    let names = cert.map(|c| c.sans.join(", ")).filter(|s| !s.is_empty());
    let mut s = match names {
        Some(n) => format!(
            "The certificate does not cover {}: it is for {n}.",
            ctx.host
        ),
        None => format!("The certificate does not cover {}.", ctx.host),
    };
    if let Some(p) = host_provider {
        s.push_str(&format!(
            " It is not the certificate of {}: this looks like interception by your hosting provider or network.",
            p.display_name
        ));
        return Draft::new(c::TLS_HOSTNAME_MISMATCH, s).fix(format!(
            "Something between you and {} answers in its place. Ask your hosting provider or network administrator to stop redirecting outgoing SMTP (cPanel/WHM: 'SMTP Restrictions'), or use their own relay as documented; never disable certificate checks to get around it.",
            p.display_name
        ));
    }
    Draft::new(c::TLS_HOSTNAME_MISMATCH, s)
}

/// Adds the certificate as evidence, and notes a certificate for another name on a
/// provider's host.
fn finish_tls(mut d: Draft, t: &TlsFailure, ctx: &Context) -> Draft {
    let host_provider = providers::all().iter().find(|p| p.matches_host(ctx.host));
    let cert = t.certificate.as_ref();
    let covers = cert.map(|c| c.sans.iter().any(|s| san_covers(s, ctx.host)));
    if d.evidence.is_none() {
        if let TlsFailureKind::Handshake { detail } | TlsFailureKind::BadCertificate { detail } =
            &t.kind
        {
            if cert.is_none() {
                d = d.evidence(detail.clone());
            }
        }
    }
    if let Some(cert) = cert {
        if d.evidence.is_none() {
            d = d.evidence(cert_evidence(cert));
        }
        if host_provider.is_some()
            && covers == Some(false)
            && !matches!(t.kind, TlsFailureKind::NameMismatch)
        {
            d = d.hint(format!(
                "The certificate names {} instead of {}: another server answered (interception).",
                cert.sans.join(", "),
                ctx.host
            ));
        }
    }
    d
}

fn timeout(stage: Stage, ctx: &Context) -> Draft {
    let mut d = Draft::new(
        c::SERVER_TIMEOUT,
        format!(
            "{}:{} stopped answering while waiting for {}.",
            ctx.host,
            ctx.port,
            stage_wait(stage)
        ),
    );
    if stage == Stage::Greeting && ctx.port == 465 && ctx.mode != TlsMode::Implicit {
        d = d.fix("Port 465 expects TLS from the first byte and never greets a plain connection: use the TLS mode implicit TLS, or port 587 with STARTTLS.");
    }
    if stage == Stage::Data {
        d = d.hint("The server did not confirm the message: it may or may not have been accepted; check the recipient's mailbox before resending.");
    }
    d
}

fn closed(stage: Stage, partial: Option<&str>, ctx: &Context) -> Draft {
    let mut d = Draft::new(
        c::SERVER_CLOSED,
        format!(
            "{}:{} closed the connection at {} without an explaining reply.",
            ctx.host,
            ctx.port,
            stage_name(stage)
        ),
    )
    .evidence(partial.unwrap_or_default());
    match stage {
        Stage::Greeting => {
            d = d.hint("A close before the greeting usually means the server refuses your IP address, or expects TLS first (port 465).");
        }
        Stage::Auth => {
            d = d.hint(
                "Some servers drop the connection after a failed login instead of replying 535.",
            );
        }
        _ => {}
    }
    d
}

/// Recognises other protocols in what arrived instead of an SMTP reply, from the
/// parser's typed evidence (the offending line, escaped), never from its message.
fn foreign_protocol(error: &crate::protocol::ReplyError) -> Option<&'static str> {
    use crate::protocol::ReplyError as E;
    let line = match error {
        E::Malformed { line, .. } => line,
        E::LineTooLong { start } => start,
        E::ReplyTooLarge { .. } => return None,
    };
    let t = line.to_ascii_lowercase();
    [
        ("ssh-", "an SSH server"),
        ("http/", "a web server"),
        ("+ok", "a POP3 server"),
        ("* ok", "an IMAP server"),
        ("\\x16\\x03", "TLS (the port expects implicit TLS)"),
    ]
    .iter()
    .find(|(k, _)| t.starts_with(k))
    .map(|(_, v)| *v)
}

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Dns => "name resolution",
        Stage::Proxy => "the proxy handshake",
        Stage::Connect => "connect",
        Stage::Tls => "the TLS handshake",
        Stage::Greeting => "the greeting",
        Stage::Ehlo => "EHLO",
        Stage::Starttls => "STARTTLS",
        Stage::Auth => "AUTH",
        Stage::Mail => "MAIL FROM",
        Stage::Rcpt => "RCPT TO",
        Stage::Data => "DATA",
        Stage::Quit => "QUIT",
    }
}

fn stage_wait(stage: Stage) -> &'static str {
    match stage {
        Stage::Greeting => "its greeting",
        Stage::Ehlo => "the reply to EHLO",
        Stage::Starttls => "the reply to STARTTLS",
        Stage::Auth => "the reply to AUTH",
        Stage::Mail => "the reply to MAIL FROM",
        Stage::Rcpt => "the reply to RCPT TO",
        Stage::Data => "the reply to the message",
        Stage::Quit => "the reply to QUIT",
        Stage::Tls => "the TLS handshake",
        Stage::Dns | Stage::Connect | Stage::Proxy => "the connection",
    }
}

/// `535 5.7.8`, or `535` without an enhanced code.
fn code_tag(reply: &Reply) -> String {
    match reply.enhanced() {
        Some(e) => format!("{} {e}", reply.code()),
        None => reply.code().to_string(),
    }
}

/// A decoded OAuth error challenge (RFC 7628 §3.2.2: a 334 whose base64 text is a JSON
/// object with `status`), rendered as `status 400, scope …`.
fn oauth_error_challenge(reply: &Reply) -> Option<String> {
    if reply.code() != 334 {
        return None;
    }
    let raw: Vec<u8> = reply.raw_texts().flat_map(|t| t.iter().copied()).collect();
    oauth_error_text(&raw)
}

fn oauth_error_text(b64: &[u8]) -> Option<String> {
    sasl::OAuthChallenge::decode(b64).summary()
}

/// The OAuth error from a 334 challenge in the transcript, if one was recorded.
fn oauth_error_in_transcript(transcript: &[Entry]) -> Option<String> {
    transcript
        .iter()
        .rev()
        .filter(|e| e.dir == Direction::Server)
        .find_map(
            |e| match crate::protocol::reply::parse_line(e.text.as_bytes())? {
                (334, _, text) => oauth_error_text(text.trim_ascii()),
                _ => None,
            },
        )
}

fn reply_failure(
    stage: Stage,
    reply: &Reply,
    ctx: &Context,
    provider: Option<&'static Provider>,
) -> Draft {
    let tag = code_tag(reply);
    let evidence = reply.display_lines().join("\n");
    let who = host_and_provider(ctx);
    let at = stage_name(stage);
    // RFC 7628 §3.2.2: an error challenge (334 + base64 JSON) instead of a final reply.
    if stage == Stage::Auth {
        if let Some(json) = oauth_error_challenge(reply) {
            return Draft::new(
                c::AUTH_OAUTH_TOKEN_REJECTED,
                format!("{who} rejected the OAuth access token ({json})."),
            )
            .evidence(evidence);
        }
    }
    let ev = rules::Evidence::new(stage, reply, provider.map(|p| p.name.as_str()));
    let Some(rule) = rules::select(&ev) else {
        let d = if stage == Stage::Auth {
            Draft::new(
                c::AUTH_PROTOCOL_VIOLATION,
                format!("{who} sent {tag} where the AUTH exchange does not allow it."),
            )
        } else {
            Draft::new(
                c::PROTOCOL_UNEXPECTED_REPLY,
                format!("{who} answered {at} with {tag}, which the protocol does not allow there."),
            )
        };
        return d.evidence(evidence);
    };
    let summary = rule
        .summary
        .replace("{who}", &who)
        .replace("{tag}", &tag)
        .replace("{at}", at);
    let mut d = Draft::new(rule.code, summary);
    if let Some(f) = rule.fix {
        d = d.fix(f);
    }
    d = refine_by_mechanism(d, &ev, ctx, &who, &tag);
    d.rule = Some(rule.id);
    rule_hints(d, rule, &ev, ctx).evidence(evidence)
}

/// The mechanism refines a credentials verdict: with OAuth (XOAUTH2, OAUTHBEARER, or an
/// OAuth error challenge earlier in the exchange), a rejected credential is a rejected
/// token. Verdicts about SMTP AUTH itself (disabled, policy) stay: OAuth is a mechanism
/// inside SMTP AUTH and fails the same way.
fn refine_by_mechanism(
    d: Draft,
    ev: &rules::Evidence,
    ctx: &Context,
    who: &str,
    tag: &str,
) -> Draft {
    let credentials_verdict =
        [c::AUTH_BAD_CREDENTIALS.code, c::AUTH_REJECTED.code].contains(&d.info.code);
    if ev.stage != Stage::Auth || ev.class != 5 || !credentials_verdict {
        return d;
    }
    let oauth = ctx.mechanism.is_some_and(|m| {
        m.eq_ignore_ascii_case("XOAUTH2") || m.eq_ignore_ascii_case("OAUTHBEARER")
    });
    let oauth_error = oauth_error_in_transcript(ctx.transcript);
    if !oauth && oauth_error.is_none() {
        return d;
    }
    let detail = oauth_error.map(|e| format!(" ({e})")).unwrap_or_default();
    Draft::new(
        c::AUTH_OAUTH_TOKEN_REJECTED,
        format!("{who} rejected the OAuth access token ({tag}){detail}."),
    )
}

/// Hints that depend on what the check knew besides the reply.
fn rule_hints(mut d: Draft, rule: &rules::Rule, ev: &rules::Evidence, ctx: &Context) -> Draft {
    match rule.id {
        "any.421" if ev.words.contains("too many") => {
            d = d.hint("The server counts too many connections or attempts from you: close other programs using it and wait.");
        }
        _ if d.info.code == c::SEND_AUTH_REQUIRED.code && ctx.user.is_some() => {
            d = d.hint("A user was given but the server still asks for authentication: check that the login step succeeded.");
        }
        "send.relay-denied" | "send.rcpt-basic" | "send.rcpt-words" | "send.rcpt-enhanced"
            if ctx.user.is_none() && ev.words.contains("relay") =>
        {
            d = d.hint("'Relay access denied' to another domain means you are not logged in: give a user name and password.");
        }
        _ => {}
    }
    d
}

#[cfg(test)]
mod tests;
