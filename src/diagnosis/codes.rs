//! The registry of diagnosis codes: stable names, one explain page each.
//!
//! Append-only, like rustc's error codes: a code, once released, keeps its meaning and
//! spelling (scripts match on it in the JSON output). [`super::diagnose`] only returns
//! codes through the constants below, and a test checks that each constant is listed in
//! [`all`]. Per-provider notes are not stored here but in [`super::providers`], so the
//! explain page and the live diagnosis give the same provider advice from one table.

/// A registered diagnosis code, e.g. `auth.bad-credentials`: only the registry below
/// makes one, so every `Code` has an explain page ([`Code::info`]). It compares equal to
/// its string (`d.code == "auth.bad-credentials"`) and serializes as the string, so
/// the JSON output is the code's name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(&'static str);

impl Code {
    /// The stable name, e.g. `auth.bad-credentials`.
    pub const fn as_str(self) -> &'static str {
        self.0
    }

    /// The registry entry: title, explanation, fix, RFCs.
    pub fn info(self) -> &'static CodeInfo {
        // Every `Code` comes from an entry of `ALL` (the field is private and only the
        // `codes!` macro fills it), so the search always finds it; the first entry is a
        // fallback the type makes unreachable, rather than a panic.
        lookup(self.0).unwrap_or(&ALL[0])
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.0, f)
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl From<Code> for &'static str {
    fn from(c: Code) -> &'static str {
        c.0
    }
}

impl From<Code> for String {
    fn from(c: Code) -> String {
        c.0.to_owned()
    }
}

impl PartialEq<String> for Code {
    fn eq(&self, other: &String) -> bool {
        self.0 == other
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<Code> for str {
    fn eq(&self, other: &Code) -> bool {
        self == other.0
    }
}

impl PartialEq<Code> for &str {
    fn eq(&self, other: &Code) -> bool {
        *self == other.0
    }
}

/// One diagnosis code and its explain page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    /// The stable code, e.g. `auth.bad-credentials`.
    pub code: Code,
    /// A one-line title.
    pub title: &'static str,
    /// A short example of the conversation, one `C:`/`S:`/`*` line per line.
    pub wire: &'static str,
    /// Why it happens.
    pub why: &'static str,
    /// How to fix it, for any server (provider notes are added from the provider table).
    pub fix: &'static str,
    /// The standards that define the behaviour.
    pub rfcs: &'static [&'static str],
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $name:ident = { $code:literal, $title:literal, wire: $wire:expr, why: $why:expr, fix: $fix:expr, rfcs: [$($rfc:literal),* $(,)?] $(,)? } )*) => {
        $(
            $(#[$doc])*
            pub const $name: CodeInfo = CodeInfo {
                code: Code($code),
                title: $title,
                wire: $wire,
                why: $why,
                fix: $fix,
                rfcs: &[$($rfc),*],
            };
        )*
        static ALL: &[CodeInfo] = &[$($name),*];
    };
}

codes! {
    /// `ok`
    OK = { "ok", "Everything that was tested worked",
        wire: "S: 220 smtp.example.com ESMTP\nC: EHLO client.example\nS: 250-smtp.example.com\nS: 250 AUTH PLAIN LOGIN\nC: AUTH PLAIN <redacted>\nS: 235 2.7.0 Accepted",
        why: "The server greeted, TLS was negotiated as configured, and (when a user was given) the credentials were accepted. With a recipient address, the message was also accepted for delivery.",
        fix: "Nothing to fix. Use the same host, port, TLS mode and user name in your mail program. If authentication was not tested, run again with the user name setting to check the password too.",
        rfcs: ["RFC 5321 §3", "RFC 4954 §4"] }
    /// `dns.no-such-host`
    DNS_NO_SUCH_HOST = { "dns.no-such-host", "The host name does not exist",
        wire: "* resolving smtp.gmial.com\n* NXDOMAIN: no such host",
        why: "The DNS has no address for this name: usually a typo, or the mail domain (gmail.com) used where the submission server (smtp.gmail.com) is needed.",
        fix: "Check the spelling of the host. Use the provider's submission server name, not your mail domain.",
        rfcs: ["RFC 1035 §4.1.1", "RFC 6186 §3"] }
    /// `dns.lookup-failed`
    DNS_LOOKUP_FAILED = { "dns.lookup-failed", "Name resolution failed",
        wire: "* resolving smtp.gmail.com\n* temporary failure in name resolution",
        why: "The resolver could not answer at all: no network, no DNS server configured, or the DNS server failed (SERVFAIL, timeout). The name itself may be fine.",
        fix: "Check this machine's network and DNS configuration (try resolving any well-known name). In containers, check /etc/resolv.conf. Retry later if the DNS server is failing.",
        rfcs: ["RFC 1035 §4.1.1"] }
    /// `connect.refused`
    CONNECT_REFUSED = { "connect.refused", "The connection was refused",
        wire: "* connecting to 192.0.2.10:587\n* connection refused (RST)",
        why: "Something answered with a TCP reset: nothing listens on that port on that host, or a firewall on the way (often on your side) rejects the connection.",
        fix: "Check the port number (587 for STARTTLS, 465 for implicit TLS). If the host is right, a local or network firewall rejects outgoing mail ports: try the other submission port, or ask the network administrator.",
        rfcs: ["RFC 9293 §3.5.2", "RFC 6409 §3.1", "RFC 8314 §3.3"] }
    /// `connect.timeout`
    CONNECT_TIMEOUT = { "connect.timeout", "The connection attempt timed out",
        wire: "* connecting to 192.0.2.10:587\n* no answer within the deadline",
        why: "Nothing answered: a firewall silently drops the packets. Many hosting providers and clouds block outgoing ports 25, 465 and/or 587 to stop spam.",
        fix: "Try the other submission port (587 <-> 465). If both time out, your host or cloud blocks outgoing mail: ask them to unblock it, or use their relay or an HTTP mail API.",
        rfcs: ["RFC 9293 §3.8.3", "RFC 6409 §3.1", "RFC 8314 §3.3"] }
    /// `connect.unreachable`
    CONNECT_UNREACHABLE = { "connect.unreachable", "The server is unreachable from here",
        wire: "* connecting to [2001:db8::10]:587\n* network is unreachable",
        why: "This machine has no route to the address: typically an IPv6 address on a network without IPv6, or no network at all.",
        fix: "Check the network connection. If only IPv6 addresses are unreachable, use the IPv4-only setting.",
        rfcs: ["RFC 9293 §3.10.7"] }
    /// `tls.implicit-on-starttls-port`
    TLS_IMPLICIT_ON_STARTTLS_PORT = { "tls.implicit-on-starttls-port", "Implicit TLS was used on a port that speaks STARTTLS",
        wire: "C: <TLS ClientHello>\nS: 220 smtp.gmail.com ESMTP ... - gsmtp\n* TLS error: the server answered in clear text",
        why: "The client started TLS immediately, but the server expects plain SMTP first and an upgrade with STARTTLS (port 587 and 25 work that way). TLS libraries report this as 'wrong version number' or 'corrupt message'.",
        fix: "Use STARTTLS on this port (the TLS mode STARTTLS, or 'STARTTLS' / 'TLS' in your mail program), or switch to port 465 for implicit TLS ('SSL/TLS').",
        rfcs: ["RFC 3207 §4", "RFC 8314 §3.3"] }
    /// `tls.starttls-on-implicit-port`
    TLS_STARTTLS_ON_IMPLICIT_PORT = { "tls.starttls-on-implicit-port", "STARTTLS or plain SMTP was used on a port that expects TLS from the first byte",
        wire: "* connected to 142.250.0.108:465\n* (waiting for a greeting: nothing arrives)\n* a second connection with TLS from the first byte succeeds",
        why: "Port 465 is implicit TLS (RFC 8314): the server waits for a TLS ClientHello and never sends a plain greeting, so a STARTTLS client waits until it times out.",
        fix: "Use implicit TLS on this port (the TLS mode implicit TLS, 'SSL/TLS' in your mail program), or use port 587 with STARTTLS.",
        rfcs: ["RFC 8314 §3.3", "RFC 3207 §4"] }
    /// `tls.untrusted-certificate`
    TLS_UNTRUSTED_CERTIFICATE = { "tls.untrusted-certificate", "The server's certificate is not trusted",
        wire: "C: STARTTLS\nS: 220 2.0.0 Ready to start TLS\n* TLS error: certificate signed by an unknown issuer",
        why: "The certificate chain does not lead to a trusted root: a self-signed or private-CA certificate, a missing intermediate certificate, or something intercepting the connection (antivirus mail scanning, a corporate proxy, a hosting provider redirecting mail ports).",
        fix: "For a public provider this is never normal: find what intercepts the connection (antivirus 'mail shield', proxy, hosting provider). For your own server, install the full chain (leaf plus intermediates) from a public CA, or give smtprobe the private CA with the trusted CA setting.",
        rfcs: ["RFC 5280 §6", "RFC 8314 §4.1", "RFC 6125 §6"] }
    /// `tls.hostname-mismatch`
    TLS_HOSTNAME_MISMATCH = { "tls.hostname-mismatch", "The certificate is for a different host name",
        wire: "C: STARTTLS\nS: 220 2.0.0 Ready to start TLS\n* TLS error: certificate not valid for smtp.example.com (covers mail.hosting.example)",
        why: "The certificate does not list the name you connected to. Either you used an alias the certificate does not cover (an IP address, a CNAME), or another server answered: a hosting provider redirecting outgoing mail ports to its own server.",
        fix: "Connect with a name the certificate covers (shown above). If you connected to a public provider and the certificate names someone else, your connection is being intercepted: ask your hosting provider to stop redirecting SMTP (cPanel: 'SMTP Restrictions').",
        rfcs: ["RFC 6125 §6", "RFC 8314 §4.1"] }
    /// `tls.expired-certificate`
    TLS_EXPIRED_CERTIFICATE = { "tls.expired-certificate", "The certificate is expired or not yet valid",
        wire: "C: STARTTLS\nS: 220 2.0.0 Ready to start TLS\n* TLS error: certificate expired",
        why: "The certificate's validity period does not include the current time: the server's administrator did not renew it, or this machine's clock is wrong.",
        fix: "Check this machine's date and time first. If it is right, the server's certificate must be renewed by its administrator.",
        rfcs: ["RFC 5280 §4.1.2.5"] }
    /// `tls.handshake-failed`
    TLS_HANDSHAKE_FAILED = { "tls.handshake-failed", "The TLS handshake failed",
        wire: "C: STARTTLS\nS: 220 2.0.0 Ready to start TLS\n* TLS error: received fatal alert: handshake_failure",
        why: "Client and server could not agree on TLS: no common protocol version or cipher (very old servers offer only TLS 1.0/1.1), a broken certificate, or the server closed the connection mid-handshake.",
        fix: "Check that the server supports TLS 1.2 or newer. For your own server, update its TLS configuration. If the server closed the connection, look at its logs.",
        rfcs: ["RFC 8446 §6", "RFC 8996 §1", "RFC 3207 §4"] }
    /// `greeting.rejected`
    GREETING_REJECTED = { "greeting.rejected", "The server refused the connection in its greeting",
        wire: "* connected to 192.0.2.10:587\nS: 554 5.7.1 Service unavailable; client host blocked",
        why: "Instead of 220, the server greeted with a refusal (554 'no SMTP service here' or a block because of your IP address's reputation).",
        fix: "Read the reply text: it usually names a block list or policy. Connect from another network, or ask the server's administrator to allow your address.",
        rfcs: ["RFC 5321 §3.1", "RFC 5321 §4.3.2"] }
    /// `server.unavailable`
    SERVER_UNAVAILABLE = { "server.unavailable", "The server is temporarily unavailable (421)",
        wire: "C: MAIL FROM:<you@gmail.com>\nS: 421 4.7.0 Try again later, closing connection. (MAIL) ... - gsmtp",
        why: "421 means the server is closing the connection and cannot serve you now: overload, maintenance, too many connections from your address, or rate limiting. It can come at any step.",
        fix: "Wait and try again later. If it persists, check whether you open too many connections, and whether your EHLO name is a real host name.",
        rfcs: ["RFC 5321 §3.8", "RFC 5321 §4.2.3"] }
    /// `server.closed`
    SERVER_CLOSED = { "server.closed", "The server closed the connection",
        wire: "C: EHLO client.example\n* connection closed by the server",
        why: "The server hung up without a reply that explains it: a crash, a policy drop (some servers close after a failed login or on clients they distrust), or a middlebox ending the connection.",
        fix: "Retry once. If it repeats at the same step, the server's logs say why; a firewall or antivirus on your side can also cut connections.",
        rfcs: ["RFC 5321 §3.8"] }
    /// `server.timeout`
    SERVER_TIMEOUT = { "server.timeout", "The server stopped answering",
        wire: "* connected to 192.0.2.10:587\n* (no greeting within the deadline)",
        why: "The TCP connection is open but no reply came within the deadline: an overloaded server, a greeting delay used against spammers, or a port that expects TLS first (465).",
        fix: "Retry with a longer timeout setting. If it waits for the greeting on port 465, use implicit TLS.",
        rfcs: ["RFC 5321 §4.5.3.2"] }
    /// `protocol.malformed-reply`
    PROTOCOL_MALFORMED_REPLY = { "protocol.malformed-reply", "The server's answer is not SMTP",
        wire: "* connected to 192.0.2.10:587\nS: SSH-2.0-OpenSSH_9.2",
        why: "The bytes that came back are not an SMTP reply (three digits, then a space or hyphen): another service listens on this port (SSH, HTTP), or a broken middlebox mangles the stream.",
        fix: "Check the host and port. Port 587/465/25 must run an SMTP server.",
        rfcs: ["RFC 5321 §4.2"] }
    /// `protocol.unexpected-reply`
    PROTOCOL_UNEXPECTED_REPLY = { "protocol.unexpected-reply", "The server sent a reply the protocol does not allow here",
        wire: "C: DATA\nS: 250 OK",
        why: "The reply is valid SMTP but not a possible answer at this step, or arrived when no command was pending: a server bug, or a middlebox that injects or reorders replies.",
        fix: "Report it to the server's administrator with the transcript. Try the other port or TLS mode to bypass a middlebox.",
        rfcs: ["RFC 5321 §4.3.2", "RFC 2920 §3"] }
    /// `ehlo.rejected`
    EHLO_REJECTED = { "ehlo.rejected", "The server rejected EHLO",
        wire: "C: EHLO localhost\nS: 501 5.5.4 Invalid EHLO/HELO domain",
        why: "The server refused the client's introduction. Usually the EHLO name is refused: not a fully qualified domain name, or one that does not match this machine.",
        fix: "Set a real, fully qualified host name as the EHLO name setting (your machine's DNS name, or an address literal like [203.0.113.7]).",
        rfcs: ["RFC 5321 §4.1.1.1", "RFC 5321 §4.1.4"] }
    /// `starttls.not-offered`
    STARTTLS_NOT_OFFERED = { "starttls.not-offered", "The server does not offer STARTTLS",
        wire: "C: EHLO client.example\nS: 250-mail.example.com\nS: 250 AUTH PLAIN LOGIN",
        why: "The EHLO reply has no STARTTLS keyword, so the connection cannot be encrypted and credentials would go in clear text. Either the server has no TLS here (use 465), or a firewall strips STARTTLS from the list (some 'SMTP inspection' features do).",
        fix: "Use port 465 with implicit TLS if the server supports it. Ask the administrator to enable STARTTLS. Check for a firewall with SMTP inspection between you and the server.",
        rfcs: ["RFC 3207 §4", "RFC 8314 §3"] }
    /// `starttls.rejected`
    STARTTLS_REJECTED = { "starttls.rejected", "The server refused STARTTLS",
        wire: "C: STARTTLS\nS: 454 4.7.0 TLS not available due to temporary reason",
        why: "The server announced STARTTLS but refused to start it, usually because its certificate or TLS configuration is broken.",
        fix: "Retry later; if it persists the server's TLS setup needs fixing (its logs will say why). Port 465 may work meanwhile.",
        rfcs: ["RFC 3207 §4"] }
    /// `starttls.injection`
    STARTTLS_INJECTION = { "starttls.injection", "Data arrived after STARTTLS, before the TLS handshake",
        wire: "C: STARTTLS\nS: 220 2.0.0 Ready to start TLS\nS: 250 injected-before-tls",
        why: "Bytes after the 220 and before the handshake are not protected by TLS and must be discarded; a server that sends them is broken, or an attacker tries to inject commands or replies (the 'STARTTLS command injection' family of bugs).",
        fix: "Do not use this path for credentials. Report it to the server's administrator; if the server is a well-known provider, suspect the network path. Port 465 (implicit TLS) avoids the STARTTLS window entirely.",
        rfcs: ["RFC 3207 §5", "RFC 3207 §4.2", "RFC 8314 §3"] }
    /// `auth.not-offered`
    AUTH_NOT_OFFERED = { "auth.not-offered", "The server does not offer authentication",
        wire: "C: EHLO client.example\nS: 250-mx.example.com\nS: 250 STARTTLS",
        why: "The EHLO reply has no AUTH keyword. Many servers announce AUTH only after STARTTLS; port 25 MX servers do not offer AUTH at all (they accept mail for their own domains only).",
        fix: "Use STARTTLS (or port 465) and check again. Use the submission port (587 or 465), not port 25. Check that the host is your provider's submission server, not its MX host.",
        rfcs: ["RFC 4954 §3", "RFC 6409 §4.3"] }
    /// `auth.mechanism-unsupported`
    AUTH_MECHANISM_UNSUPPORTED = { "auth.mechanism-unsupported", "No usable authentication mechanism",
        wire: "S: 250 AUTH CRAM-MD5 GSSAPI\n* no mechanism smtprobe supports (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER)",
        why: "The mechanisms the server lists and the ones the client can use have nothing in common (or the mechanism chosen with the mechanism setting is not offered).",
        fix: "Pick a mechanism from the server's list with the mechanism setting, or ask the administrator to enable PLAIN/LOGIN over TLS.",
        rfcs: ["RFC 4954 §3", "RFC 4422 §3.1"] }
    /// `auth.plaintext-refused`
    AUTH_PLAINTEXT_REFUSED = { "auth.plaintext-refused", "Refused to send credentials without TLS",
        wire: "* TLS mode none and a user name given\n* smtprobe did not send the password",
        why: "The connection is not encrypted, so the password would cross the network in clear text (base64 is not encryption). smtprobe refuses by default.",
        fix: "Use the TLS mode STARTTLS (587) or the TLS mode implicit TLS (465). Only on a lab server you control, turn on the plaintext-authentication setting.",
        rfcs: ["RFC 4954 §4", "RFC 8314 §3"] }
    /// `auth.requires-tls`
    AUTH_REQUIRES_TLS = { "auth.requires-tls", "The server requires TLS before authentication",
        wire: "C: AUTH PLAIN <redacted>\nS: 530 5.7.0 Must issue a STARTTLS command first.",
        why: "The client tried to log in (or send) over an unencrypted connection and the server refuses until STARTTLS has been done.",
        fix: "Use STARTTLS on 587 (the TLS mode STARTTLS) or implicit TLS on 465 (the TLS mode implicit TLS).",
        rfcs: ["RFC 3207 §4", "RFC 4954 §6"] }
    /// `auth.bad-credentials`
    AUTH_BAD_CREDENTIALS = { "auth.bad-credentials", "The user name or password was rejected",
        wire: "C: AUTH PLAIN <redacted>\nS: 535-5.7.8 Username and Password not accepted. For more information, go to\nS: 535 5.7.8  https://support.google.com/mail/?p=BadCredentials ... - gsmtp",
        why: "The server checked the credentials and refused them: wrong password, wrong user name form (local part instead of full address), or an account password where the provider requires an app password.",
        fix: "Check the user name (usually the full address) and the password. With providers that use app passwords, create one and use it instead of your account password.",
        rfcs: ["RFC 4954 §6", "RFC 4616 §2"] }
    /// `auth.app-password-required`
    AUTH_APP_PASSWORD_REQUIRED = { "auth.app-password-required", "The provider requires an app password",
        wire: "C: AUTH PLAIN <redacted>\nS: 534-5.7.9 Application-specific password required. Learn more at\nS: 534 5.7.9 https://support.google.com/mail/?p=InvalidSecondFactor ... - gsmtp",
        why: "The account has 2-step verification, so the account password cannot be used by mail programs; the provider wants a separate app password.",
        fix: "Create an app password in your account's security settings and use it as the password.",
        rfcs: ["RFC 4954 §6", "RFC 5248 §2.4"] }
    /// `auth.web-login-required`
    AUTH_WEB_LOGIN_REQUIRED = { "auth.web-login-required", "The provider wants you to sign in on the web first",
        wire: "C: AUTH PLAIN <redacted>\nS: 534-5.7.14 <https://accounts.google.com/signin/continue?...> Please log in via your web browser and\nS: 534 5.7.14 then try again.",
        why: "The provider's risk checks blocked this sign-in (new location, unusual client) or the account needs an action (password change, verification) that can only be done in a browser.",
        fix: "Sign in to the account in a web browser from the same network, complete any security prompt, then retry. Consider an app password.",
        rfcs: ["RFC 5248 §2.4", "RFC 4954 §6"] }
    /// `auth.disabled-by-provider`
    AUTH_DISABLED_BY_PROVIDER = { "auth.disabled-by-provider", "Password login (SMTP AUTH) is disabled for this account",
        wire: "C: AUTH LOGIN\nS: 535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.",
        why: "The credentials may be right, but the provider or the organisation's administrator has turned off SMTP authentication (or the account is disabled).",
        fix: "Ask the administrator to enable authenticated SMTP for this mailbox, or use OAuth 2.0 (XOAUTH2) if the provider requires it.",
        rfcs: ["RFC 4954 §6", "RFC 5248 §2.4"] }
    /// `auth.too-many-attempts`
    AUTH_TOO_MANY_ATTEMPTS = { "auth.too-many-attempts", "Too many login attempts",
        wire: "C: AUTH PLAIN <redacted>\nS: 454 4.7.0 Too many login attempts, please try again later. ... - gsmtp",
        why: "The server throttles logins after repeated failures or too many connections in a short time, often because a program keeps retrying a wrong password.",
        fix: "Stop every program that uses this account with the old password, wait (minutes to an hour), then try once with the right credentials.",
        rfcs: ["RFC 4954 §6"] }
    /// `auth.temporary-failure`
    AUTH_TEMPORARY_FAILURE = { "auth.temporary-failure", "Authentication failed temporarily",
        wire: "C: AUTH PLAIN <redacted>\nS: 454 4.7.0 Temporary authentication failure",
        why: "The server could not check the credentials right now (its authentication backend failed), so it did not decide either way.",
        fix: "Retry later. If it persists on your own server, check its authentication backend (Dovecot auth, LDAP, SASL daemon).",
        rfcs: ["RFC 4954 §6"] }
    /// `auth.oauth-token-rejected`
    AUTH_OAUTH_TOKEN_REJECTED = { "auth.oauth-token-rejected", "The OAuth access token was rejected",
        wire: "C: AUTH XOAUTH2 <redacted>\nS: 334 eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==\nC:\nS: 535-5.7.8 Username and Password not accepted.",
        why: "The server decoded the bearer token and refused it: expired (access tokens last about an hour), issued for another account, or missing the mail scope (for Gmail https://mail.google.com/). The 334 challenge carries a JSON error with the details.",
        fix: "Get a fresh access token with the right scope for this exact account (user must match the token's account), then retry.",
        rfcs: ["RFC 7628 §3.2.2", "RFC 6750 §3.1", "RFC 4954 §4"] }
    /// `auth.protocol-violation`
    AUTH_PROTOCOL_VIOLATION = { "auth.protocol-violation", "The server broke the AUTH exchange",
        wire: "C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: <redacted username>\nS: 334 UGFzc3dvcmQ6\nC: <redacted password>\nS: 334 UGFzc3dvcmQ6",
        why: "The server's replies do not follow RFC 4954: success before the credentials were sent, a third LOGIN prompt, 503 bad sequence, or a challenge that is not base64.",
        fix: "Try another mechanism with the mechanism setting. Report the transcript to the server's administrator; a proxy or antivirus in the path can also cause it.",
        rfcs: ["RFC 4954 §4", "RFC 4422 §5"] }
    /// `auth.rejected`
    AUTH_REJECTED = { "auth.rejected", "The server refused authentication for another reason",
        wire: "C: AUTH PLAIN <redacted>\nS: 501 5.5.2 Cannot decode response",
        why: "The server refused the AUTH command with a reply that is not a credentials verdict (syntax, command not allowed, policy).",
        fix: "Read the reply and its decoded codes below. Try another mechanism with the mechanism setting; ask the administrator if it persists.",
        rfcs: ["RFC 4954 §6"] }
    /// `send.auth-required`
    SEND_AUTH_REQUIRED = { "send.auth-required", "The server requires authentication before sending",
        wire: "C: MAIL FROM:<you@gmail.com>\nS: 530-5.7.0 Authentication Required. For more information, go to\nS: 530 5.7.0  https://support.google.com/mail/?p=WantAuthError ... - gsmtp",
        why: "Submission servers accept mail only from logged-in users; the client tried to send without authenticating.",
        fix: "Give the user name setting (and a password) so smtprobe logs in before sending; in your program, enable 'SMTP authentication'.",
        rfcs: ["RFC 4954 §6", "RFC 6409 §4.3"] }
    /// `send.sender-rejected`
    SEND_SENDER_REJECTED = { "send.sender-rejected", "The sender address was rejected",
        wire: "C: MAIL FROM:<someone-else@example.com>\nS: 553 5.7.1 <someone-else@example.com>: Sender address rejected: not owned by user you@example.com",
        why: "The server refuses the envelope sender: you may send only as your own address (or configured aliases), or the address is not valid.",
        fix: "Use your own address (the one you log in with) as the sender address setting, or add the other address as an alias ('Send mail as') in the provider's settings.",
        rfcs: ["RFC 5321 §4.1.1.2", "RFC 6409 §8.1"] }
    /// `send.recipient-rejected`
    SEND_RECIPIENT_REJECTED = { "send.recipient-rejected", "The recipient was rejected",
        wire: "C: RCPT TO:<nobody@example.com>\nS: 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown",
        why: "The server refuses this recipient: unknown user, full mailbox, or relay not permitted (sending to other domains requires authentication).",
        fix: "Check the recipient address. If the reply says relay access denied, authenticate first (the user name setting).",
        rfcs: ["RFC 5321 §4.1.1.3", "RFC 3463 §3.2"] }
    /// `send.quota-exceeded`
    SEND_QUOTA_EXCEEDED = { "send.quota-exceeded", "A sending limit was reached",
        wire: "C: .\nS: 550-5.4.5 Daily user sending limit exceeded. For more information on Gmail\nS: 550 5.4.5  https://support.google.com/a/answer/166852 ... - gsmtp",
        why: "The account has sent too many messages or to too many recipients in a period; the provider blocks further sending for a while.",
        fix: "Wait for the limit to reset (often 24 hours), send fewer messages or to fewer recipients per message, or use a service meant for bulk mail.",
        rfcs: ["RFC 3463 §3.5", "RFC 3463 §3.6", "RFC 5321 §4.5.3.1.10"] }
    /// `send.message-too-large`
    SEND_MESSAGE_TOO_LARGE = { "send.message-too-large", "The message is too large",
        wire: "C: MAIL FROM:<you@gmail.com> SIZE=40000000\nS: 552 5.3.4 Message size exceeds fixed maximum message size",
        why: "The message (attachments included, grown by about a third by base64 encoding) exceeds the server's size limit (announced as SIZE in the EHLO reply).",
        fix: "Send a smaller message: compress attachments or share them as links.",
        rfcs: ["RFC 1870 §6", "RFC 3463 §3.4", "RFC 5321 §4.5.3.1"] }
    /// `send.syntax-error`
    SEND_SYNTAX_ERROR = { "send.syntax-error", "An address or command was malformed",
        wire: "C: RCPT TO:<>\nS: 555 5.5.2 Syntax error. ... - gsmtp",
        why: "The server could not parse the command: an empty or malformed address, a display name inside MAIL FROM, or an unsupported parameter.",
        fix: "Use bare addresses (me@example.org, no name, no quotes) for the sender address setting and the recipient address setting.",
        rfcs: ["RFC 5321 §4.1.2", "RFC 5321 §4.2.3"] }
    /// `send.rejected`
    SEND_REJECTED = { "send.rejected", "The server refused the message",
        wire: "C: .\nS: 550 5.7.1 Message rejected as spam",
        why: "The server refused the mail transaction for a reason not covered by a more specific code (policy, content, a temporary local error).",
        fix: "Read the reply text and the decoded status code. Temporary (4xx) refusals can be retried later.",
        rfcs: ["RFC 5321 §4.2.3", "RFC 3463 §3"] }
    // Appended for issue 11 (December 2026 facts). Never rename or reorder the above.
    /// `auth.basic-auth-disabled`
    AUTH_BASIC_AUTH_DISABLED = { "auth.basic-auth-disabled", "Password (Basic) authentication is switched off: OAuth is required",
        wire: "C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: <redacted username>\nS: 334 UGFzc3dvcmQ6\nC: <redacted password>\nS: 550 5.7.30 Basic authentication is not supported for Client Submission.",
        why: "The provider no longer accepts a password (or an app password, which is a password too) for SMTP AUTH on this account; only OAuth works. Microsoft 365 switches Basic authentication for SMTP AUTH off by default for existing tenants at the end of December 2026 (reply 550 5.7.30, or 5.7.139 'basic authentication is disabled'); Outlook.com has refused passwords since 16 September 2024.",
        fix: "Sign in with OAuth (XOAUTH2 or OAUTHBEARER) from a program or library that supports it for this provider, or use the provider's HTTP sending API. A new password or app password will not help.",
        rfcs: ["RFC 4954 §6", "RFC 7628 §3", "RFC 3463 §3.8"] }
    /// `auth.policy-blocked`
    AUTH_POLICY_BLOCKED = { "auth.policy-blocked", "A sign-in policy of the organisation blocked the login",
        wire: "C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: <redacted username>\nS: 334 UGFzc3dvcmQ6\nC: <redacted password>\nS: 535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully. Contact your administrator.",
        why: "The password may be right, but a policy of the organisation refused the sign-in: Microsoft 365 Conditional Access, security defaults or a multi-factor requirement.",
        fix: "An administrator of the organisation must look at the sign-in log for this user and change or exempt the policy; or sign in with OAuth, which can satisfy the policy.",
        rfcs: ["RFC 4954 §6", "RFC 3463 §3.8"] }
    /// `auth.account-disabled`
    AUTH_ACCOUNT_DISABLED = { "auth.account-disabled", "The account itself is disabled",
        wire: "C: AUTH PLAIN <redacted>\nS: 535 5.7.13 User account disabled",
        why: "The server knows the account but it is disabled (RFC 5248 X.7.13: locked, suspended, deleted, or not yet activated). This is not SMTP AUTH being switched off for mail programs: no login works, on the web either.",
        fix: "Sign in on the provider's website to see why the account is disabled, or ask the administrator to enable it. Changing mail program settings will not help.",
        rfcs: ["RFC 3463 §3.8", "RFC 5248 §2.4"] }
    /// `send.account-blocked`
    SEND_ACCOUNT_BLOCKED = { "send.account-blocked", "The account is blocked from sending (suspected spam)",
        wire: "C: MAIL FROM:<you@contoso.com>\nS: 550 5.1.8 Access denied, bad outbound sender",
        why: "The login worked, but the provider has blocked this account from sending because it was suspected of sending spam (Microsoft 365: the restricted-senders list). It is not about which address is in From or Send As permissions.",
        fix: "Secure the account (change the password, remove unknown forwarding rules and app passwords), then ask the administrator to release it (Microsoft 365: Microsoft Defender portal, Restricted entities). A personal account follows the steps shown when signing in on the web.",
        rfcs: ["RFC 3463 §3.2", "RFC 5321 §4.2.3"] }
    /// `send.sender-not-verified`
    SEND_SENDER_NOT_VERIFIED = { "send.sender-not-verified", "The sender address is not a verified identity of the sending service",
        wire: "C: .\nS: 554 Message rejected: Email address is not verified. The following identities failed the check in region US-EAST-1: you@example.com",
        why: "Sending services (Amazon SES, SendGrid) send only from addresses or domains the account has verified; in Amazon SES's sandbox the recipients must be verified too.",
        fix: "Verify the sender address or its domain in the service's console (for Amazon SES in the same region as the SMTP endpoint), then retry; for Amazon SES, request production access to leave the sandbox.",
        rfcs: ["RFC 5321 §4.1.1.2", "RFC 6409 §8.1"] }
    /// `tls.client-certificate-required`
    TLS_CLIENT_CERTIFICATE_REQUIRED = { "tls.client-certificate-required", "The server requires a client certificate",
        wire: "C: <TLS ClientHello>\nS: <TLS CertificateRequest>\nC: <TLS Certificate: none>\nS: <TLS alert: certificate_required>",
        why: "The server authenticates clients by TLS certificate (mutual TLS) and ended the handshake because no client certificate was presented. This is not an IP block: the TLS layer said what it wants.",
        fix: "Give the client certificate and its private key that the server's administrator issued for you (in smtprobe: the client certificate setting), or use the server's password-based submission port instead.",
        rfcs: ["RFC 8446 §4.4.2.4", "RFC 8446 §6.2", "RFC 5246 §7.4.6"] }
    /// `tls.version-too-old`
    TLS_VERSION_TOO_OLD = { "tls.version-too-old", "The server offers only TLS versions older than 1.2",
        wire: "C: <TLS ClientHello: TLS 1.2, TLS 1.3>\nS: <TLS ServerHello: TLS 1.0>\n* TLS error: the server does not support TLS 1.2 or 1.3",
        why: "TLS 1.0 and 1.1 are deprecated (RFC 8996) and smtprobe, like current mail programs and libraries, refuses them. The server negotiates only an old version.",
        fix: "The server's administrator must enable TLS 1.2 or 1.3. Until then, a modern client cannot connect securely; do not fall back to an unencrypted connection with a password.",
        rfcs: ["RFC 8996 §2", "RFC 8446 §4.2.1", "RFC 5246 §7.4.1.3"] }
    /// `tls.alert-received`
    TLS_ALERT_RECEIVED = { "tls.alert-received", "The server ended the TLS handshake with an alert",
        wire: "C: <TLS ClientHello>\nS: <TLS alert: handshake_failure>",
        why: "The server answered in TLS, so it is alive and speaks TLS on this port, but it sent a fatal alert naming why it refuses the handshake (no common cipher or version, a certificate it wants, a name it does not serve). Waiting longer will not change the answer.",
        fix: "Read the alert named in the evidence: handshake_failure or insufficient_security usually means no common cipher suite or version (the server's TLS configuration is outdated); unrecognized_name means the server does not serve this host name. The server's administrator must change its TLS configuration.",
        rfcs: ["RFC 8446 §6", "RFC 8446 §6.2", "RFC 5246 §7.2"] }
    // Appended for issue 13 (SCRAM, HELO-only, message checks, proxies).
    /// `auth.server-not-verified`
    AUTH_SERVER_NOT_VERIFIED = { "auth.server-not-verified", "The server did not prove it knows the password (SCRAM)",
        wire: "C: AUTH SCRAM-SHA-256 <client-first: user you@example.org>\nS: 334 cj1meWtv...\nC: <redacted: SCRAM client proof>\nS: 334 dj1BQUFB... (v= signature that does not verify)\nC: *",
        why: "SCRAM is mutual (RFC 5802 §3): after the client's proof the server sends its own signature, computed from the password. It did not verify, or the server claimed success without sending it. The server does not really hold this account's credentials: a misconfigured server (another user database, a proxy that terminates AUTH) or a man in the middle that answers in the server's place.",
        fix: "Do not trust this connection. Check that the host is the real server (its certificate, the address you connect to), and ask its administrator whether AUTH is relayed to another backend. To test the password alone, choose PLAIN with the mechanism setting.",
        rfcs: ["RFC 5802 §3", "RFC 5802 §9", "RFC 7677 §3"] }
    /// `ehlo.not-esmtp`
    EHLO_NOT_ESMTP = { "ehlo.not-esmtp", "The server does not speak ESMTP (HELO only)",
        wire: "C: EHLO client.example\nS: 502 5.5.1 command not implemented\nC: HELO client.example\nS: 250 mx.example",
        why: "The server refused EHLO with 500 or 502 and accepted HELO: it is a pre-1995 SMTP server (or something between you and it strips ESMTP). Without EHLO there are no extensions: no STARTTLS and no AUTH, so a submission check cannot go on.",
        fix: "This is not a submission server: use the provider's submission host on 587 (STARTTLS) or 465 (TLS). If a firewall with SMTP inspection sits in between, turn that inspection off.",
        rfcs: ["RFC 5321 §4.1.1.1", "RFC 5321 §3.2", "RFC 1869 §4.5"] }
    /// `send.extension-not-offered`
    SEND_EXTENSION_NOT_OFFERED = { "send.extension-not-offered", "The message needs SMTPUTF8 or 8BITMIME, which the server lacks",
        wire: "S: 250-mx.example\nS: 250 SIZE 10240000\n* an address is not ASCII, and the server did not announce SMTPUTF8",
        why: "Non-ASCII addresses need SMTPUTF8 (RFC 6531 §3.4) and an 8-bit body needs 8BITMIME (RFC 6152 §3). The server did not announce the extension, so sending would corrupt or bounce the message; smtprobe did not send it.",
        fix: "Use ASCII addresses (or the punycode form of the domain), keep the body 7-bit (attachments smtprobe adds are base64 already), or use a server that announces SMTPUTF8/8BITMIME.",
        rfcs: ["RFC 6531 §3.4", "RFC 6152 §3", "RFC 2045 §6"] }
    /// `proxy.unreachable`
    PROXY_UNREACHABLE = { "proxy.unreachable", "The proxy itself could not be reached",
        wire: "* connect to proxy 127.0.0.1:1080 failed: Connection refused",
        why: "The TCP connection to the proxy (the proxy setting, or ALL_PROXY) was refused or got no answer: nothing listens at that address, or a firewall blocks it. The mail server was never tried.",
        fix: "Check the proxy address and port in the proxy setting (the form curl -x uses), that the proxy runs, and that ALL_PROXY is what you meant.",
        rfcs: ["RFC 1928 §3", "RFC 9110 §9.3.6"] }
    /// `proxy.auth-failed`
    PROXY_AUTH_FAILED = { "proxy.auth-failed", "The proxy refused the proxy credentials",
        wire: "C: 05 02 00 02\nS: 05 02\nC: <redacted: proxy user/password>\nS: 01 01",
        why: "The proxy asked for a user name and password (SOCKS5 RFC 1929, HTTP 407) and refused the ones given, or wanted credentials and none were given.",
        fix: "Give the proxy credentials in the URL (socks5://user:password@host:port, http://user:password@host:port) or check them with your proxy administrator. They are not your mail password.",
        rfcs: ["RFC 1929 §2", "RFC 1928 §3", "RFC 9110 §15.5.8"] }
    /// `proxy.destination-refused`
    PROXY_DESTINATION_REFUSED = { "proxy.destination-refused", "The proxy could not or would not reach the mail server",
        wire: "C: 05 01 00 03 smtp.example.org 587\nS: 05 05 (connection refused by destination host)",
        why: "The proxy accepted us but its connection to the mail server failed: the server refused or did not answer, the name did not resolve at the proxy, or the proxy's rules forbid that port (many HTTP proxies allow CONNECT only to 443).",
        fix: "Check the host and port from the proxy's side; ask the proxy administrator to allow CONNECT to the submission port (587 or 465).",
        rfcs: ["RFC 1928 §6", "RFC 9110 §9.3.6"] }
    /// `proxy.protocol-error`
    PROXY_PROTOCOL_ERROR = { "proxy.protocol-error", "The proxy did not speak the proxy protocol",
        wire: "C: 05 01 00\nS: 48 54 54 50 (\"HTTP/1.1 400\": not a SOCKS5 reply)",
        why: "What answered at the proxy address sent bytes that are not a SOCKS5 (RFC 1928) or HTTP CONNECT reply, closed the connection, or said nothing before the deadline: a wrong port, or the other kind of proxy.",
        fix: "Check the scheme in the proxy setting: socks5:// for a SOCKS proxy (port 1080 usually), http:// for an HTTP proxy (3128 or 8080 usually).",
        rfcs: ["RFC 1928 §3", "RFC 1928 §6", "RFC 9110 §9.3.6"] }
}

/// The entry for a code string, if registered.
pub fn lookup(code: &str) -> Option<&'static CodeInfo> {
    ALL.iter().find(|c| c.code.0 == code)
}

/// Every registered code, in registry order.
pub fn all() -> &'static [CodeInfo] {
    ALL
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_complete() {
        for (i, c) in ALL.iter().enumerate() {
            assert!(ALL[i + 1..].iter().all(|d| d.code != c.code), "{}", c.code);
            assert!(!c.title.is_empty() && !c.why.is_empty() && !c.fix.is_empty());
            assert!(!c.wire.is_empty() && !c.rfcs.is_empty(), "{}", c.code);
            for line in c.wire.lines() {
                assert!(
                    line.starts_with("C:") || line.starts_with("S:") || line.starts_with("* "),
                    "{}: {line}",
                    c.code
                );
            }
            assert!(
                c.code
                    .as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'-'),
                "{}",
                c.code
            );
            assert_eq!(lookup(c.code.as_str()), Some(c));
            // Issue 11: fix texts name settings; the CLI adds its flags when it renders.
            crate::diagnosis::providers::tests::assert_no_flag(c.fix, c.code.as_str());
            crate::diagnosis::providers::tests::assert_no_flag(c.why, c.code.as_str());
        }
    }

    #[test]
    fn a_code_is_its_string_in_comparisons_json_and_text() {
        let c = AUTH_BAD_CREDENTIALS.code;
        assert!(c == "auth.bad-credentials");
        assert!("auth.bad-credentials" == c);
        let owned = String::from("auth.bad-credentials");
        assert!(c == owned && c != "auth.rejected");
        assert_eq!(c.as_str(), "auth.bad-credentials");
        assert_eq!(
            format!("{c} {c:?}"),
            "auth.bad-credentials \"auth.bad-credentials\""
        );
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            "\"auth.bad-credentials\""
        );
        for info in ALL {
            assert_eq!(info.code.info(), info, "{}", info.code);
        }
    }

    #[test]
    fn brief_codes_are_present() {
        for code in [
            "ok",
            "dns.no-such-host",
            "dns.lookup-failed",
            "connect.refused",
            "connect.timeout",
            "connect.unreachable",
            "tls.implicit-on-starttls-port",
            "tls.starttls-on-implicit-port",
            "tls.untrusted-certificate",
            "tls.hostname-mismatch",
            "tls.expired-certificate",
            "tls.handshake-failed",
            "greeting.rejected",
            "server.unavailable",
            "server.closed",
            "server.timeout",
            "protocol.malformed-reply",
            "ehlo.rejected",
            "starttls.not-offered",
            "starttls.rejected",
            "starttls.injection",
            "auth.not-offered",
            "auth.mechanism-unsupported",
            "auth.plaintext-refused",
            "auth.requires-tls",
            "auth.bad-credentials",
            "auth.app-password-required",
            "auth.web-login-required",
            "auth.disabled-by-provider",
            "auth.too-many-attempts",
            "auth.temporary-failure",
            "auth.oauth-token-rejected",
            "auth.protocol-violation",
            "send.auth-required",
            "send.sender-rejected",
            "send.recipient-rejected",
            "send.quota-exceeded",
            "send.message-too-large",
            "send.syntax-error",
            "send.rejected",
        ] {
            assert!(lookup(code).is_some(), "{code}");
        }
        assert!(lookup("nope").is_none());
    }
}
