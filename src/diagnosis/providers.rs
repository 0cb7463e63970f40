//! Known mail providers, as data: how to recognise them (host name, greeting banner) and
//! what their help pages tell users to do when a diagnosis applies to them.
//!
//! The diagnosis code is never picked from the provider (a provider's wording changes;
//! the reply code and enhanced status code do not), only the fix text is tailored.

use super::codes;
use crate::failure::TlsMode;

/// Which form of user name the provider expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsernameForm {
    /// The full email address (`you@gmail.com`).
    FullAddress,
    /// Whatever the server's administrator configured.
    AsConfigured,
}

/// How a provider's app passwords look and where to make one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppPassword {
    /// True when password login works only with an app password (for Gmail: whenever
    /// 2-Step Verification is on, which is the only way app passwords exist).
    pub required: bool,
    /// Number of ASCII letters in a generated app password, ignoring the spaces or hyphens
    /// providers show between groups; `None` when the format is not letters only.
    pub letters: Option<usize>,
    /// Where and how to create one.
    pub how: &'static str,
}

/// One known provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provider {
    /// Stable short name (`gmail`), used in JSON.
    pub name: &'static str,
    /// Name for people (`Gmail / Google Workspace`).
    pub display_name: &'static str,
    /// The submission server.
    pub host: &'static str,
    /// Ports and TLS modes the provider documents, preferred first.
    pub ports: &'static [(u16, TlsMode)],
    /// The user name form.
    pub username: UsernameForm,
    /// Host names (exact, case-insensitive) that are this provider's submission servers.
    pub host_patterns: &'static [&'static str],
    /// Mail domains of the provider (`gmail.com`): people put these where the submission
    /// host belongs.
    pub mail_domains: &'static [&'static str],
    /// Words (case-insensitive) that appear in the provider's greeting banner.
    pub banner_patterns: &'static [&'static str],
    /// True when every genuine greeting contains one of `banner_patterns`, so a banner
    /// without them on the provider's host means someone else answered.
    pub banner_is_reliable: bool,
    /// App passwords, if the provider has them.
    pub app_password: Option<AppPassword>,
    /// The provider's help page for mail program settings.
    pub help_url: &'static str,
    /// Provider-specific fix texts, by diagnosis code, where they differ from the generic one.
    pub fixes: &'static [(&'static str, &'static str)],
}

impl Provider {
    /// The provider's fix text for a diagnosis code, if it has one.
    pub fn fix_for(&self, code: &str) -> Option<&'static str> {
        self.fixes.iter().find(|(c, _)| *c == code).map(|(_, f)| *f)
    }

    /// True when `host` is one of this provider's submission hosts.
    pub fn matches_host(&self, host: &str) -> bool {
        let h = normalise_host(host);
        self.host_patterns
            .iter()
            .any(|p| p.eq_ignore_ascii_case(&h))
    }

    /// True when the banner contains one of the provider's banner words.
    pub fn matches_banner(&self, banner: &str) -> bool {
        let b = banner.to_ascii_lowercase();
        self.banner_patterns.iter().any(|p| b.contains(p))
    }

    /// The other documented port, for "try the other port" advice.
    pub fn other_port(&self, port: u16) -> Option<(u16, TlsMode)> {
        self.ports.iter().copied().find(|(p, _)| *p != port)
    }

    /// The documented settings in one line: `smtp.gmail.com, port 587 (STARTTLS) or 465
    /// (implicit TLS), user name: your full address`.
    pub fn settings_line(&self) -> String {
        let ports: Vec<String> = self
            .ports
            .iter()
            .map(|(p, m)| format!("port {p} ({})", mode_label(*m)))
            .collect();
        let user = match self.username {
            UsernameForm::FullAddress => ", user name: your full email address",
            UsernameForm::AsConfigured => "",
        };
        format!("{}, {}{user}", self.host, ports.join(" or "))
    }
}

/// How a TLS mode is called in mail programs.
pub fn mode_label(mode: TlsMode) -> &'static str {
    match mode {
        TlsMode::Starttls => "STARTTLS",
        TlsMode::Implicit => "implicit TLS, 'SSL/TLS'",
        TlsMode::None => "no TLS",
    }
}

fn normalise_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

const SUBMISSION: &[(u16, TlsMode)] = &[(587, TlsMode::Starttls), (465, TlsMode::Implicit)];

/// The providers, in the order banners are matched (Office 365 before Outlook.com: both
/// greet from `outlook.office365.com`-style hosts, and custom domains are mostly tenants).
static PROVIDERS: &[Provider] = &[
    Provider {
        name: "gmail",
        display_name: "Gmail / Google Workspace",
        host: "smtp.gmail.com",
        ports: SUBMISSION,
        username: UsernameForm::FullAddress,
        host_patterns: &["smtp.gmail.com", "smtp.googlemail.com", "gmail-smtp-msa.l.google.com"],
        mail_domains: &["gmail.com", "googlemail.com"],
        banner_patterns: &["gsmtp"],
        banner_is_reliable: true,
        app_password: Some(AppPassword {
            required: true,
            letters: Some(16),
            how: "Turn on 2-Step Verification (myaccount.google.com/security), then create an app password at https://myaccount.google.com/apppasswords and use its 16 letters as the password (the spaces do not matter). \"Less secure app access\" ended on May 30 2022, so the account password no longer works for mail programs.",
        }),
        help_url: "https://support.google.com/mail/answer/7126229",
        fixes: &[
            (codes::AUTH_BAD_CREDENTIALS.code, "Gmail accepts only an app password here, never your Google account password. Turn on 2-Step Verification, create an app password at https://myaccount.google.com/apppasswords, and use its 16 letters with your full Gmail/Workspace address as the user name. If the App passwords page is missing: 2-Step Verification is off, uses security keys only, the account is under Advanced Protection, or a work/school administrator disabled it (then use OAuth/XOAUTH2)."),
            (codes::AUTH_APP_PASSWORD_REQUIRED.code, "Your account has 2-Step Verification, so Gmail wants an app password: create one at https://myaccount.google.com/apppasswords and use its 16 letters instead of your account password."),
            (codes::AUTH_WEB_LOGIN_REQUIRED.code, "Open the link in the reply (or https://accounts.google.com) in a browser, sign in, and confirm it was you; then retry. If it keeps happening, use an app password (https://myaccount.google.com/apppasswords) with 2-Step Verification on. See https://support.google.com/mail/answer/78754."),
            (codes::AUTH_TOO_MANY_ATTEMPTS.code, "Gmail throttles logins after repeated failures. Stop every program still trying an old password, wait, and retry once with an app password."),
            (codes::AUTH_OAUTH_TOKEN_REJECTED.code, "Request a new access token with the https://mail.google.com/ scope for this exact account; access tokens expire after about one hour."),
            (codes::AUTH_DISABLED_BY_PROVIDER.code, "A Google Workspace administrator can turn off password sign-in for mail programs; ask them, or use OAuth (XOAUTH2)."),
            (codes::SEND_QUOTA_EXCEEDED.code, "Gmail limits how much you send per day (about 500 recipients for a personal account, 2000 for Workspace; see https://support.google.com/a/answer/166852). Sending is blocked for up to 24 hours."),
            (codes::SEND_MESSAGE_TOO_LARGE.code, "Gmail's limit is 25 MB per message after encoding (SIZE 35882577 on the wire); larger files must go through Google Drive links."),
            (codes::SEND_SENDER_REJECTED.code, "Gmail sends only as your own address or an address added under Settings > Accounts > 'Send mail as'."),
            (codes::SERVER_UNAVAILABLE.code, "Gmail answers 421 4.7.0 'Try again later' when it rate-limits a connection; at EHLO, a missing or invalid EHLO name also triggers it. Wait a few minutes and check that --helo is a real host name."),
            (codes::CONNECT_TIMEOUT.code, "smtp.gmail.com answers on 587 and 465 from anywhere; a timeout means your network or hosting provider blocks outgoing mail ports (many clouds block them by default)."),
            (codes::AUTH_REQUIRES_TLS.code, "Gmail never accepts a login without TLS: use port 587 with STARTTLS or 465 with implicit TLS."),
        ],
    },
    Provider {
        name: "office365",
        display_name: "Microsoft 365 / Office 365",
        host: "smtp.office365.com",
        ports: &[(587, TlsMode::Starttls)],
        username: UsernameForm::FullAddress,
        host_patterns: &["smtp.office365.com"],
        mail_domains: &[],
        banner_patterns: &["office365.com", "prod.outlook.com", "microsoft esmtp"],
        banner_is_reliable: false,
        app_password: None,
        help_url: "https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission",
        fixes: &[
            (codes::AUTH_DISABLED_BY_PROVIDER.code, "SMTP AUTH is off for the tenant or this mailbox. An administrator enables it per mailbox (Microsoft 365 admin center > user > Mail > Manage email apps > 'Authenticated SMTP', or Set-CASMailbox -SmtpClientAuthenticationDisabled $false) and for the tenant (Set-TransportConfig -SmtpClientAuthenticationDisabled $false). Security defaults also block it. Microsoft is retiring Basic authentication for SMTP AUTH; use OAuth (XOAUTH2) where possible."),
            (codes::AUTH_BAD_CREDENTIALS.code, "Use the full address as the user name. If the account has multi-factor authentication, a password login is refused: use OAuth (XOAUTH2), or an app password where the tenant still allows them. Check also that SMTP AUTH is enabled for the mailbox."),
            (codes::SEND_SENDER_REJECTED.code, "Office 365 sends only as the signed-in mailbox unless you have 'Send As' permission for the other address."),
            (codes::TLS_IMPLICIT_ON_STARTTLS_PORT.code, "Office 365 documents only port 587 with STARTTLS for client submission."),
        ],
    },
    Provider {
        name: "outlook",
        display_name: "Outlook.com / Hotmail",
        host: "smtp-mail.outlook.com",
        ports: &[(587, TlsMode::Starttls)],
        username: UsernameForm::FullAddress,
        host_patterns: &["smtp-mail.outlook.com", "smtp.live.com", "smtp.outlook.com"],
        mail_domains: &["outlook.com", "hotmail.com", "live.com", "msn.com"],
        banner_patterns: &["outlook.com"],
        banner_is_reliable: false,
        app_password: Some(AppPassword {
            required: false,
            letters: Some(16),
            how: "With two-step verification on, create an app password at https://account.live.com/proofs/AppPassword (Microsoft account > Security > Advanced security options). Outlook.com has been retiring password sign-in for mail programs in favour of OAuth.",
        }),
        help_url: "https://support.microsoft.com/office/pop-imap-and-smtp-settings-for-outlook-com-d088b986-291d-42b8-9564-9c414e2aa040",
        fixes: &[
            (codes::AUTH_BAD_CREDENTIALS.code, "Use the full address as the user name. Outlook.com has turned off Basic (password) authentication for many accounts: use a mail program that signs in with OAuth (XOAUTH2), or an app password if your account still accepts one."),
            (codes::AUTH_DISABLED_BY_PROVIDER.code, "Outlook.com no longer accepts password logins for this account: use OAuth (XOAUTH2)."),
        ],
    },
    Provider {
        name: "yahoo",
        display_name: "Yahoo Mail",
        host: "smtp.mail.yahoo.com",
        ports: &[(465, TlsMode::Implicit), (587, TlsMode::Starttls)],
        username: UsernameForm::FullAddress,
        host_patterns: &["smtp.mail.yahoo.com"],
        mail_domains: &["yahoo.com", "ymail.com"],
        banner_patterns: &["yahoo"],
        banner_is_reliable: false,
        app_password: Some(AppPassword {
            required: true,
            letters: Some(16),
            how: "Create an app password under Yahoo Account Security > 'Generate app password' (https://login.yahoo.com/account/security) and use it instead of your account password.",
        }),
        help_url: "https://help.yahoo.com/kb/SLN4075.html",
        fixes: &[
            (codes::AUTH_BAD_CREDENTIALS.code, "Yahoo requires an app password for mail programs: generate one at https://login.yahoo.com/account/security and use it with your full Yahoo address."),
            (codes::AUTH_TOO_MANY_ATTEMPTS.code, "Yahoo blocks logins after several failures (#AUTH005); wait, then retry once with an app password."),
        ],
    },
    Provider {
        name: "icloud",
        display_name: "iCloud Mail",
        host: "smtp.mail.me.com",
        ports: &[(587, TlsMode::Starttls)],
        username: UsernameForm::FullAddress,
        host_patterns: &["smtp.mail.me.com", "smtp.me.com"],
        mail_domains: &["icloud.com", "me.com", "mac.com"],
        banner_patterns: &["icloud", "apple.com", "me.com"],
        banner_is_reliable: false,
        app_password: Some(AppPassword {
            required: true,
            letters: Some(16),
            how: "Create an app-specific password at https://account.apple.com (Sign-In and Security > App-Specific Passwords); it requires two-factor authentication. It looks like xxxx-xxxx-xxxx-xxxx.",
        }),
        help_url: "https://support.apple.com/102525",
        fixes: &[
            (codes::AUTH_BAD_CREDENTIALS.code, "iCloud needs an app-specific password (https://account.apple.com > Sign-In and Security > App-Specific Passwords) and your full iCloud address as the user name (Apple's page allows the name before @ for some setups, the full address always works)."),
        ],
    },
    Provider {
        name: "zoho",
        display_name: "Zoho Mail",
        host: "smtp.zoho.com",
        ports: SUBMISSION,
        username: UsernameForm::FullAddress,
        host_patterns: &["smtp.zoho.com", "smtp.zoho.eu", "smtp.zoho.in", "smtp.zoho.com.au", "smtp.zoho.jp", "smtppro.zoho.com", "smtppro.zoho.eu", "smtppro.zoho.in"],
        mail_domains: &["zoho.com", "zohomail.com", "zoho.eu"],
        banner_patterns: &["zoho"],
        banner_is_reliable: false,
        app_password: Some(AppPassword {
            required: false,
            letters: None,
            how: "With two-factor authentication on, create an application-specific password at https://accounts.zoho.com (Security > App Passwords).",
        }),
        help_url: "https://www.zoho.com/mail/help/zoho-smtp.html",
        fixes: &[
            (codes::AUTH_BAD_CREDENTIALS.code, "Use your full Zoho address. With two-factor authentication on, use an application-specific password. Use the host of your data centre (smtp.zoho.eu for EU accounts, smtppro.zoho.* for organisation accounts): the wrong region rejects valid credentials."),
            (codes::SEND_SENDER_REJECTED.code, "Zoho refuses a sender that is not your account address or a configured alias ('553 Relaying disallowed'); --from must match the logged-in account."),
        ],
    },
];

/// The fallback when no provider is recognised: generic advice only.
pub static GENERIC: Provider = Provider {
    name: "generic",
    display_name: "your mail server",
    host: "",
    ports: SUBMISSION,
    username: UsernameForm::AsConfigured,
    host_patterns: &[],
    mail_domains: &[],
    banner_patterns: &[],
    banner_is_reliable: false,
    app_password: None,
    help_url: "",
    fixes: &[],
};

/// Every known provider (without [`GENERIC`]).
pub fn all() -> &'static [Provider] {
    PROVIDERS
}

/// A provider by its short name (`gmail`, `outlook`, `office365`, `yahoo`, `icloud`, `zoho`).
pub fn by_name(name: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// The provider the host name or, failing that, the greeting banner belongs to.
///
/// The host wins: on smtp.gmail.com a foreign banner means someone else answered (see
/// [`banner_mismatch`]), not that the user uses another provider.
pub fn recognise(host: &str, banner: Option<&str>) -> Option<&'static Provider> {
    PROVIDERS
        .iter()
        .find(|p| p.matches_host(host))
        .or_else(|| banner.and_then(|b| PROVIDERS.iter().find(|p| p.matches_banner(b))))
}

/// The provider whose *mail domain* the host is (`gmail.com`), when the user gave the
/// domain instead of the submission host.
pub fn by_mail_domain(host: &str) -> Option<&'static Provider> {
    let h = normalise_host(host);
    PROVIDERS
        .iter()
        .find(|p| p.mail_domains.iter().any(|d| d.eq_ignore_ascii_case(&h)))
}

/// When the host belongs to a provider but the banner does not look like that provider's,
/// returns the provider: someone else (typically the hosting provider's own MTA) answered.
pub fn banner_mismatch(host: &str, banner: Option<&str>) -> Option<&'static Provider> {
    let p = PROVIDERS.iter().find(|p| p.matches_host(host))?;
    let banner = banner?;
    let foreign = PROVIDERS
        .iter()
        .any(|q| q.name != p.name && q.matches_banner(banner) && !p.matches_banner(banner));
    let missing = p.banner_is_reliable && !p.matches_banner(banner);
    (foreign || missing || looks_like_hosting_mta(banner) && !p.matches_banner(banner)).then_some(p)
}

/// Banners of MTAs that public providers do not run but shared hosting does.
fn looks_like_hosting_mta(banner: &str) -> bool {
    let b = banner.to_ascii_lowercase();
    ["exim", "cpanel", "plesk", "postfix", "sendmail", "qmail"]
        .iter()
        .any(|w| b.contains(w))
}

/// Known submission host names close to `host` (Damerau–Levenshtein distance ≤ 2), or the
/// submission host of the provider whose mail domain `host` is. Best match first.
pub fn suggest_hosts(host: &str) -> Vec<&'static str> {
    let h = normalise_host(host);
    let mut out: Vec<(usize, &'static str)> = Vec::new();
    if let Some(p) = by_mail_domain(&h) {
        out.push((0, p.host));
    }
    if h.len() >= 4 {
        for p in PROVIDERS {
            for cand in p.host_patterns {
                let d = osa_distance(&h, cand);
                if d > 0 && d <= 2 && !out.iter().any(|(_, c)| c == cand) {
                    out.push((d, cand));
                }
            }
        }
    }
    out.sort_by_key(|(d, _)| *d);
    out.into_iter().map(|(_, c)| c).collect()
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions), on chars.
pub(crate) fn osa_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Long inputs cannot be close to a short host name; avoid quadratic work on junk.
    if a.len().abs_diff(b.len()) > 2 || a.len() > 256 {
        return usize::MAX;
    }
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_by_host_then_banner() {
        assert_eq!(recognise("smtp.gmail.com", None).unwrap().name, "gmail");
        assert_eq!(
            recognise("SMTP.GoogleMail.com.", None).unwrap().name,
            "gmail"
        );
        assert_eq!(
            recognise("smtp.office365.com", None).unwrap().name,
            "office365"
        );
        assert_eq!(
            recognise("smtp-mail.outlook.com", None).unwrap().name,
            "outlook"
        );
        assert_eq!(
            recognise("smtp.mail.yahoo.com", None).unwrap().name,
            "yahoo"
        );
        assert_eq!(recognise("smtp.mail.me.com", None).unwrap().name, "icloud");
        assert_eq!(recognise("smtp.zoho.eu", None).unwrap().name, "zoho");
        let b = "smtp.gmail.com ESMTP t66sm6271302pjb.45 - gsmtp";
        assert_eq!(
            recognise("mail.example.org", Some(b)).unwrap().name,
            "gmail"
        );
        let ms = "BN9PR03CA0123.outlook.office365.com Microsoft ESMTP MAIL Service ready";
        assert_eq!(
            recognise("mail.contoso.com", Some(ms)).unwrap().name,
            "office365"
        );
        assert!(recognise("mail.example.org", Some("mail.example.org ESMTP Postfix")).is_none());
        for p in all() {
            assert_eq!(by_name(p.name), Some(p));
            assert!(p.matches_host(p.host), "{}", p.name);
            assert!(!p.help_url.is_empty());
            for (code, _) in p.fixes {
                assert!(codes::lookup(code).is_some(), "{code}");
            }
        }
    }

    #[test]
    fn interception_is_seen_in_the_banner() {
        let exim = "server.hostingprovider.net ESMTP Exim 4.96 #2";
        assert_eq!(
            banner_mismatch("smtp.gmail.com", Some(exim)).unwrap().name,
            "gmail"
        );
        let real = "smtp.gmail.com ESMTP t66sm6271302pjb.45 - gsmtp";
        assert!(banner_mismatch("smtp.gmail.com", Some(real)).is_none());
        assert!(banner_mismatch("mail.example.org", Some(exim)).is_none());
        assert!(banner_mismatch("smtp.gmail.com", None).is_none());
        // Unreliable banner list: an unknown banner is not enough.
        assert!(banner_mismatch("smtp.mail.me.com", Some("p00-xyz ESMTP")).is_none());
        assert!(banner_mismatch("smtp.mail.me.com", Some("host ESMTP Exim 4")).is_some());
    }

    #[test]
    fn suggests_close_hosts() {
        assert_eq!(suggest_hosts("smtp.gmial.com")[0], "smtp.gmail.com");
        assert_eq!(suggest_hosts("smtp.gmail.co")[0], "smtp.gmail.com");
        assert_eq!(suggest_hosts("smpt.gmail.com")[0], "smtp.gmail.com");
        assert_eq!(suggest_hosts("gmail.com")[0], "smtp.gmail.com");
        assert_eq!(suggest_hosts("hotmail.com")[0], "smtp-mail.outlook.com");
        assert!(suggest_hosts("mail.example.org").is_empty());
        assert!(suggest_hosts("smtp.gmail.com").is_empty());
        assert!(suggest_hosts("").is_empty());
        assert!(suggest_hosts(&"x".repeat(10_000)).is_empty());
    }

    #[test]
    fn settings_line_names_ports_and_user_form() {
        let g = by_name("gmail").unwrap();
        let s = g.settings_line();
        assert!(
            s.contains("587 (STARTTLS)") && s.contains("465") && s.contains("full"),
            "{s}"
        );
        assert_eq!(g.other_port(587).unwrap().0, 465);
    }
}
