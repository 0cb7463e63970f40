//! Known mail providers, as data: how to recognise them (e-mail domain, submission host,
//! MX host, greeting banner, certificate names), their documented submission settings,
//! and what their help pages tell users to do when a diagnosis applies to them.
//!
//! The data lives in `providers.json` (compiled in with `include_str!`) so that every
//! fact carries its source and the date it was checked, and can be reviewed as data; the
//! `tests` module below checks that every entry has settings and a sourced fact, that
//! every fix names a registered code, and that no fix text names a command-line flag.
//!
//! The provider never picks the diagnosis code (a provider's wording changes; the reply
//! code and enhanced status code do not): it refines the rule the reply matched, and it
//! tailors the fix text.
//!
//! # Recognition
//! Outlook.com and Microsoft 365 are served by the same fleet and greet alike, and an
//! on-premises Exchange server greets with the same "Microsoft ESMTP MAIL Service": so the
//! host decides first, then the *user's address* (a personal hotmail.com address on
//! smtp.office365.com is an Outlook.com account, listed as a `shared_hosts` entry), then
//! the banner in the data file's order (more specific first). A banner that only names
//! server software (Exchange) is not a provider: see [`server_software`].

use crate::tls_mode::TlsMode;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// What kind of service a provider is; it decides whose advice fits ("ask your
/// administrator" only fits a business tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A mailbox people sign in to (Gmail, Outlook.com, Yahoo, …).
    Mailbox,
    /// An organisation's tenant with administrators (Microsoft 365).
    Business,
    /// A relay an administrator sets up for an organisation (smtp-relay.gmail.com).
    Relay,
    /// A service for sending from applications (Amazon SES, SendGrid, …).
    SendingService,
}

/// Which form of user name the provider expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UsernameForm {
    /// The full email address (`you@gmail.com`).
    FullAddress,
    /// Whatever the server's administrator or the service's console configured.
    AsConfigured,
    /// A fixed string, given in [`Username::value`] (SendGrid: `apikey`).
    Literal,
}

/// Where a fact comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// What the page or report is.
    pub title: String,
    /// Its address, when one is known (`None`: stated by the fact sheet without one).
    pub url: Option<String>,
    /// When the fact was last checked, `YYYY-MM-DD`.
    pub checked: String,
    /// `doc` (the provider's own page), `report` (an issue tracker, a vendor knowledge
    /// base), `sheet` (smtprobe's fact sheet) or `brief`.
    pub kind: String,
    /// What could not be confirmed.
    #[serde(default)]
    pub note: Option<String>,
}

/// A list of patterns or names with the source that gives them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Sourced {
    /// The values (host patterns may start with `*.` or hold `*` for one DNS label).
    pub values: Vec<String>,
    /// A key of the sources table.
    pub source: String,
    /// What could not be confirmed.
    #[serde(default)]
    pub note: Option<String>,
    /// For banners: true when every genuine greeting contains one of the values, so a
    /// banner without them on the provider's host means someone else answered.
    #[serde(default)]
    pub reliable: bool,
}

/// One documented submission setting.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    /// The submission host.
    pub host: String,
    /// The port.
    pub port: u16,
    /// How TLS is used on it.
    pub mode: TlsMode,
    /// A key of the sources table.
    pub source: String,
    /// A caveat (Amazon SES: one host per region).
    #[serde(default)]
    pub note: Option<String>,
}

/// The user name the provider expects.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Username {
    /// Its form.
    pub form: UsernameForm,
    /// The literal value for [`UsernameForm::Literal`].
    #[serde(default)]
    pub value: Option<String>,
    /// A key of the sources table.
    pub source: String,
}

/// How a provider's app passwords look and where to make one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppPassword {
    /// True when password login works only with an app password.
    pub required: bool,
    /// Number of ASCII letters in a generated app password, ignoring the spaces or hyphens
    /// providers show between groups; `None` when the format is not letters only.
    pub letters: Option<usize>,
    /// Where and how to create one.
    pub how: String,
    /// A key of the sources table.
    pub source: String,
}

/// A statement about the provider, shown by `explain PROVIDER`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    /// The fact, for people.
    pub text: String,
    /// A key of the sources table.
    pub source: String,
}

/// When a [`Note`] applies to a successful check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoteWhen {
    /// The message was accepted with a sender address other than the login.
    ForeignFrom,
}

/// A warning for a check that succeeded (Gmail rewrites a foreign From).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Note {
    /// When it applies.
    pub when: NoteWhen,
    /// The warning.
    pub text: String,
    /// A key of the sources table.
    pub source: String,
}

/// The provider's fix text for one diagnosis code.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fix {
    /// A registered diagnosis code.
    pub code: String,
    /// What to do; names settings, never command-line flags.
    pub text: String,
    /// A key of the sources table.
    pub source: String,
}

/// One known provider.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// Stable short name (`gmail`), used in JSON and by `explain PROVIDER`.
    pub name: String,
    /// Name for people (`Gmail / Google Workspace`).
    pub display_name: String,
    /// What kind of service it is.
    pub kind: Kind,
    /// The domains of its users' addresses (`gmail.com`).
    pub email_domains: Sourced,
    /// Its submission host names (patterns).
    pub submission_hosts: Sourced,
    /// Hosts of another provider that also serve this provider's accounts (Outlook.com
    /// accounts on smtp.office365.com): with an address of this provider there, this
    /// provider's advice applies.
    #[serde(default)]
    pub shared_hosts: Sourced,
    /// Its MX host names (patterns), for settings discovery from a domain's MX records.
    pub mx_hosts: Sourced,
    /// Words (case-insensitive) that appear in its greeting banner.
    pub banner: Sourced,
    /// Names its submission certificates carry.
    pub certificate_names: Sourced,
    /// The documented submission settings, preferred first (never empty).
    pub settings: Vec<Setting>,
    /// The user name it expects.
    pub username: Username,
    /// App passwords, if the provider has them.
    pub app_password: Option<AppPassword>,
    /// Its help page for mail program settings.
    pub help_url: String,
    /// What a user should know, with sources.
    pub facts: Vec<Fact>,
    /// Warnings for checks that succeeded.
    pub success_notes: Vec<Note>,
    /// Fix texts by diagnosis code, where they differ from the generic one.
    pub fixes: Vec<Fix>,
}

/// Server software recognised from its banner only (on-premises Exchange): not a
/// provider, so no provider advice; its facts explain why.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSoftware {
    /// Stable short name (`exchange-onprem`).
    pub name: String,
    /// Name for people.
    pub display_name: String,
    /// Words of its banner.
    pub banner: Sourced,
    /// What a user should know, with sources.
    pub facts: Vec<Fact>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Data {
    #[allow(dead_code)]
    about: String,
    sources: BTreeMap<String, Source>,
    servers: Vec<ServerSoftware>,
    providers: Vec<Provider>,
}

const DATA_JSON: &str = include_str!("providers.json");

fn data() -> &'static Data {
    static DATA: OnceLock<Data> = OnceLock::new();
    // The file is compiled in and checked by the tests below; a parse error here is a
    // build defect, never user input.
    DATA.get_or_init(|| {
        serde_json::from_str(DATA_JSON)
            .unwrap_or_else(|e| panic!("src/diagnosis/providers.json is invalid: {e}"))
    })
}

/// The source behind a key used in the data file.
pub fn source(key: &str) -> Option<&'static Source> {
    data().sources.get(key)
}

/// Every source, by key.
pub fn sources() -> &'static BTreeMap<String, Source> {
    &data().sources
}

impl Provider {
    /// The documented submission settings (host, port, TLS mode), preferred first.
    pub fn submission(&self) -> &[Setting] {
        &self.settings
    }

    /// The preferred submission host.
    pub fn host(&self) -> &str {
        self.settings.first().map_or("", |s| s.host.as_str())
    }

    /// The setting documented for `port`, if any.
    pub fn setting_for_port(&self, port: u16) -> Option<&Setting> {
        self.settings.iter().find(|s| s.port == port)
    }

    /// The provider's fix text for a diagnosis code, if it has one.
    pub fn fix_for(&self, code: &str) -> Option<&str> {
        self.fixes
            .iter()
            .find(|f| f.code == code)
            .map(|f| f.text.as_str())
    }

    /// True when `host` is one of this provider's submission hosts.
    pub fn matches_host(&self, host: &str) -> bool {
        let h = normalise_host(host);
        self.submission_hosts
            .values
            .iter()
            .any(|p| host_matches(p, &h))
    }

    /// True when `host` is one of this provider's MX hosts.
    pub fn matches_mx(&self, host: &str) -> bool {
        let h = normalise_host(host);
        self.mx_hosts.values.iter().any(|p| host_matches(p, &h))
    }

    /// True when the banner contains one of the provider's banner words.
    pub fn matches_banner(&self, banner: &str) -> bool {
        let b = banner.to_ascii_lowercase();
        self.banner.values.iter().any(|p| b.contains(p.as_str()))
    }

    /// True when `domain` (of an email address) belongs to this provider.
    pub fn has_email_domain(&self, domain: &str) -> bool {
        let d = normalise_host(domain);
        self.email_domains.values.contains(&d)
    }

    /// True when every genuine greeting of this provider contains a banner word.
    pub fn banner_is_reliable(&self) -> bool {
        self.banner.reliable
    }

    /// The other documented port, for "try the other port" advice.
    pub fn other_port(&self, port: u16) -> Option<(u16, TlsMode)> {
        self.settings
            .iter()
            .find(|s| s.port != port)
            .map(|s| (s.port, s.mode))
    }

    /// The documented settings in one line: `smtp.gmail.com, port 587 (STARTTLS) or 465
    /// (implicit TLS), user name: your full email address`.
    pub fn settings_line(&self) -> String {
        let host = self.host();
        let ports: Vec<String> = self
            .settings
            .iter()
            .filter(|s| s.host == host)
            .map(|s| format!("port {} ({})", s.port, mode_label(s.mode)))
            .collect();
        let user = match (self.username.form, &self.username.value) {
            (UsernameForm::FullAddress, _) => ", user name: your full email address".to_owned(),
            (UsernameForm::Literal, Some(v)) => format!(", user name: the literal string {v}"),
            _ => String::new(),
        };
        format!("{host}, {}{user}", ports.join(" or "))
    }

    /// Every source key the entry uses, in the order its facts appear.
    pub fn source_keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = [
            &self.email_domains,
            &self.submission_hosts,
            &self.shared_hosts,
            &self.mx_hosts,
            &self.banner,
            &self.certificate_names,
        ]
        .iter()
        .map(|s| s.source.as_str())
        .filter(|s| !s.is_empty())
        .collect();
        keys.extend(self.settings.iter().map(|s| s.source.as_str()));
        keys.push(&self.username.source);
        keys.extend(self.app_password.iter().map(|a| a.source.as_str()));
        keys.extend(self.facts.iter().map(|f| f.source.as_str()));
        keys.extend(self.success_notes.iter().map(|f| f.source.as_str()));
        keys.extend(self.fixes.iter().map(|f| f.source.as_str()));
        let mut seen = Vec::new();
        keys.retain(|k| {
            let new = !seen.contains(k);
            seen.push(k);
            new
        });
        keys
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

/// A host pattern match: labels compared case-insensitively; a `*` label matches exactly
/// one non-empty label (RFC 6125 §6.4.3 style, so `*.googlemail.com` does not match
/// `googlemail.com` itself nor `a.b.googlemail.com`).
fn host_matches(pattern: &str, host: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let h: Vec<&str> = host.split('.').collect();
    p.len() == h.len()
        && p.iter()
            .zip(&h)
            .all(|(p, h)| (*p == "*" && !h.is_empty()) || p.eq_ignore_ascii_case(h))
}

/// Every known provider.
pub fn all() -> &'static [Provider] {
    &data().providers
}

/// Server software recognised from banners.
pub fn servers() -> &'static [ServerSoftware] {
    &data().servers
}

/// A provider by its short name (`gmail`, `outlook`, `office365`, …).
pub fn by_name(name: &str) -> Option<&'static Provider> {
    all()
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name.trim()))
}

/// The provider whose users have addresses at `domain` (`gmail.com`, `hotmail.com`), for
/// settings discovery from an email address. Case-insensitive; a trailing dot is ignored.
pub fn by_email_domain(domain: &str) -> Option<&'static Provider> {
    all().iter().find(|p| p.has_email_domain(domain))
}

/// The provider whose MX host `mx_host` is (`alt1.aspmx.l.google.com`,
/// `contoso-com.mail.protection.outlook.com`), for settings discovery from a domain's MX
/// records. Case-insensitive; a trailing dot is ignored.
pub fn by_mx_host(mx_host: &str) -> Option<&'static Provider> {
    all().iter().find(|p| p.matches_mx(mx_host))
}

/// The domain of an email address (`you@Gmail.com` → `gmail.com`).
pub fn email_domain(address: &str) -> Option<String> {
    let (_, d) = address.trim().rsplit_once('@')?;
    let d = normalise_host(d.trim_end_matches('>'));
    (!d.is_empty()).then_some(d)
}

/// The provider the host name or, failing that, the greeting banner belongs to.
pub fn recognise(host: &str, banner: Option<&str>) -> Option<&'static Provider> {
    recognise_for(host, banner, None)
}

/// The provider whose advice applies: the host's provider, unless the user's address
/// belongs to a provider that shares that host (a hotmail.com address on
/// smtp.office365.com is an Outlook.com account); else the banner's provider (in the data
/// file's order), with the same rule for the user's address.
///
/// The host wins over the banner: on smtp.gmail.com a foreign banner means someone else
/// answered (see [`banner_mismatch`]), not that the user uses another provider.
pub fn recognise_for(
    host: &str,
    banner: Option<&str>,
    user: Option<&str>,
) -> Option<&'static Provider> {
    let by_user = user
        .and_then(email_domain)
        .and_then(|d| by_email_domain(&d));
    let h = normalise_host(host);
    if let Some(p) = all().iter().find(|p| p.matches_host(&h)) {
        return Some(match by_user {
            Some(q)
                if q.name != p.name
                    && q.shared_hosts.values.iter().any(|s| host_matches(s, &h)) =>
            {
                q
            }
            _ => p,
        });
    }
    let p = banner.and_then(|b| all().iter().find(|p| p.matches_banner(b)))?;
    Some(match by_user {
        Some(q)
            if q.name != p.name
                && p.submission_hosts
                    .values
                    .iter()
                    .any(|ph| q.shared_hosts.values.contains(ph)) =>
        {
            q
        }
        _ => p,
    })
}

/// Server software named by the banner (on-premises Exchange), when no provider's banner
/// matched: its greeting alone must not earn tenant advice.
pub fn server_software(banner: Option<&str>) -> Option<&'static ServerSoftware> {
    let b = banner?.to_ascii_lowercase();
    if all().iter().any(|p| p.matches_banner(&b)) {
        return None;
    }
    servers()
        .iter()
        .find(|s| s.banner.values.iter().any(|w| b.contains(w.as_str())))
}

/// The provider whose *mail domain* the host is (`gmail.com`), when the user gave the
/// domain instead of the submission host.
pub fn by_mail_domain(host: &str) -> Option<&'static Provider> {
    by_email_domain(host)
}

/// When the host belongs to a provider but the banner does not look like that provider's,
/// returns the provider: someone else (typically the hosting provider's own MTA) answered.
pub fn banner_mismatch(host: &str, banner: Option<&str>) -> Option<&'static Provider> {
    let p = all().iter().find(|p| p.matches_host(host))?;
    let banner = banner?;
    let foreign = all()
        .iter()
        .any(|q| q.name != p.name && q.matches_banner(banner) && !p.matches_banner(banner));
    let missing = p.banner_is_reliable() && !p.matches_banner(banner);
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
        out.push((0, p.host()));
    }
    if h.len() >= 4 {
        for p in all() {
            for cand in &p.submission_hosts.values {
                if cand.contains('*') {
                    continue;
                }
                let d = osa_distance(&h, cand);
                if d > 0 && d <= 2 && !out.iter().any(|(_, c)| c == cand) {
                    out.push((d, cand.as_str()));
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
pub(crate) mod tests {
    use super::*;
    use crate::diagnosis::codes;

    #[test]
    fn recognises_by_host_then_banner() {
        assert_eq!(recognise("smtp.gmail.com", None).unwrap().name, "gmail");
        assert_eq!(
            recognise("SMTP.GoogleMail.com.", None).unwrap().name,
            "gmail"
        );
        let name = |h: &str| recognise(h, None).map(|p| p.name.as_str());
        assert_eq!(name("smtp.office365.com"), Some("office365"));
        assert_eq!(name("smtp-mail.outlook.com"), Some("outlook"));
        assert_eq!(name("smtp.mail.yahoo.com"), Some("yahoo"));
        assert_eq!(name("smtp.mail.me.com"), Some("icloud"));
        assert_eq!(name("smtp.zoho.eu"), Some("zoho"));
        assert_eq!(name("smtppro.zoho.sa"), Some("zoho"));
        assert_eq!(name("smtp-relay.gmail.com"), Some("google-relay"));
        assert_eq!(name("email-smtp.eu-west-1.amazonaws.com"), Some("ses"));
        assert_eq!(name("smtp.sendgrid.net"), Some("sendgrid"));
        assert_eq!(name("smtp.eu.mailgun.org"), Some("mailgun"));
        assert_eq!(name("smtp-relay.brevo.com"), Some("brevo"));
        assert_eq!(name("smtp.fastmail.com"), Some("fastmail"));
        assert_eq!(name("mail.gmx.net"), Some("gmx"));
        assert_eq!(name("smtp.web.de"), Some("webde"));
        assert_eq!(name("smtp.aol.com"), Some("aol"));
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
    }

    /// Same fleet, different advice: a personal address on smtp.office365.com is an
    /// Outlook.com account; a work address stays Microsoft 365; an on-premises Exchange
    /// banner is neither.
    #[test]
    fn outlook_com_microsoft_365_and_exchange_are_told_apart() {
        let on = |host, banner, user| recognise_for(host, banner, user).map(|p| p.name.as_str());
        for personal in [
            "me@hotmail.com",
            "me@outlook.com",
            "me@live.com",
            "me@MSN.com",
        ] {
            assert_eq!(
                on("smtp.office365.com", None, Some(personal)),
                Some("outlook"),
                "{personal}"
            );
        }
        assert_eq!(
            on("smtp.office365.com", None, Some("me@contoso.com")),
            Some("office365")
        );
        assert_eq!(on("smtp.office365.com", None, None), Some("office365"));
        let ms = "AM0PR01CA0001.outlook.office365.com Microsoft ESMTP MAIL Service ready";
        assert_eq!(
            on("mail.contoso.com", Some(ms), Some("me@hotmail.com")),
            Some("outlook")
        );
        assert_eq!(
            on("mail.contoso.com", Some(ms), Some("me@contoso.com")),
            Some("office365")
        );
        let onprem =
            "EXCH01.corp.contoso.com Microsoft ESMTP MAIL Service ready at Tue, 1 Dec 2026";
        assert_eq!(
            on("mail.contoso.com", Some(onprem), Some("me@contoso.com")),
            None
        );
        assert_eq!(
            server_software(Some(onprem)).unwrap().name,
            "exchange-onprem"
        );
        assert!(server_software(Some(ms)).is_none());
        // A personal address on Gmail's host stays Gmail: only listed shared hosts move.
        assert_eq!(
            on("smtp.gmail.com", None, Some("me@hotmail.com")),
            Some("gmail")
        );
    }

    #[test]
    fn lookups_for_settings_discovery() {
        let by_domain = |d| by_email_domain(d).map(|p| p.name.as_str());
        assert_eq!(by_domain("gmail.com"), Some("gmail"));
        assert_eq!(by_domain("GoogleMail.com."), Some("gmail"));
        for d in ["outlook.com", "hotmail.com", "live.com", "msn.com"] {
            assert_eq!(by_domain(d), Some("outlook"), "{d}");
        }
        assert_eq!(by_domain("yahoo.com"), Some("yahoo"));
        assert_eq!(by_domain("icloud.com"), Some("icloud"));
        assert_eq!(by_domain("example.org"), None);
        let by_mx = |h| by_mx_host(h).map(|p| p.name.as_str());
        assert_eq!(by_mx("aspmx.l.google.com"), Some("gmail"));
        assert_eq!(by_mx("ALT1.ASPMX.L.GOOGLE.COM."), Some("gmail"));
        assert_eq!(by_mx("aspmx2.googlemail.com"), Some("gmail"));
        assert_eq!(by_mx("smtp.google.com"), Some("gmail"));
        assert_eq!(
            by_mx("contoso-com.mail.protection.outlook.com"),
            Some("office365")
        );
        assert_eq!(by_mx("mail.protection.outlook.com"), None);
        assert_eq!(by_mx("a.b.mail.protection.outlook.com"), None);
        assert_eq!(by_mx("mx2.zoho.com"), Some("zoho"));
        assert_eq!(by_mx("mx.example.org"), None);
        let g = by_email_domain("gmail.com").unwrap();
        let s = &g.submission()[0];
        assert_eq!(
            (s.host.as_str(), s.port, s.mode),
            ("smtp.gmail.com", 587, TlsMode::Starttls)
        );
        assert_eq!(
            email_domain("Me <me@Hotmail.COM>").as_deref(),
            Some("hotmail.com")
        );
        assert_eq!(email_domain("nobody"), None);
    }

    /// The data test of issue 11: every entry has settings and a source URL with a
    /// checked date; every fact names a known source; every fix names a registered code
    /// and no command-line flag.
    #[test]
    fn every_fact_has_a_source_and_every_fix_a_code() {
        for (key, s) in sources() {
            let d = s.checked.as_bytes();
            assert!(
                d.len() == 10 && d[4] == b'-' && d[7] == b'-' && s.checked.starts_with("20"),
                "{key}: checked {:?}",
                s.checked
            );
            if let Some(u) = &s.url {
                assert!(
                    u.starts_with("https://") || u.starts_with("http://"),
                    "{key}: {u}"
                );
            }
            assert!(
                ["doc", "report", "sheet", "brief"].contains(&s.kind.as_str()),
                "{key}"
            );
        }
        let mut names = Vec::new();
        for p in all() {
            assert!(!names.contains(&p.name), "{} twice", p.name);
            names.push(p.name.clone());
            assert!(!p.settings.is_empty(), "{}: no settings", p.name);
            for s in &p.settings {
                assert!(s.port > 0 && !s.host.is_empty(), "{}", p.name);
                assert!(
                    p.matches_host(&s.host) || p.name == "ses" && s.host.starts_with("email-smtp."),
                    "{}: {}",
                    p.name,
                    s.host
                );
            }
            assert!(p.help_url.starts_with("https://"), "{}", p.name);
            let keys = p.source_keys();
            for k in &keys {
                assert!(source(k).is_some(), "{}: unknown source {k}", p.name);
            }
            assert!(
                keys.iter()
                    .any(|k| source(k).is_some_and(|s| s.url.is_some())),
                "{}: no source with a URL",
                p.name
            );
            for f in &p.fixes {
                assert!(codes::lookup(&f.code).is_some(), "{}: {}", p.name, f.code);
                assert!(!f.text.is_empty());
                assert_no_flag(&f.text, &p.name);
            }
            if let Some(ap) = &p.app_password {
                assert_no_flag(&ap.how, &p.name);
            }
            for n in &p.success_notes {
                assert_no_flag(&n.text, &p.name);
            }
            assert_eq!(by_name(&p.name), Some(p));
        }
        for s in servers() {
            assert!(source(&s.banner.source).is_some());
            for f in &s.facts {
                assert!(source(&f.source).is_some(), "{}", s.name);
            }
        }
    }

    /// Fix texts in the library name settings; the CLI adds its flags when it renders.
    pub(crate) fn assert_no_flag(text: &str, who: &str) {
        for word in text.split_whitespace() {
            let w = word.trim_start_matches(['(', '\'', '"']);
            assert!(
                !(w.starts_with("--") && w[2..].starts_with(|c: char| c.is_ascii_alphabetic())),
                "{who}: fix text names a command-line flag {word:?}: {text}"
            );
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
        // Outlook.com greets from the Microsoft 365 fleet: that is not interception.
        let fleet = "AM0PR01CA0001.outlook.office365.com Microsoft ESMTP MAIL Service ready";
        assert!(banner_mismatch("smtp-mail.outlook.com", Some(fleet)).is_none());
        assert!(banner_mismatch("smtp.office365.com", Some(fleet)).is_none());
        assert_eq!(
            recognise("mail.example.org", Some(fleet)).unwrap().name,
            "office365"
        );
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
        assert!(by_name("sendgrid")
            .unwrap()
            .settings_line()
            .contains("apikey"));
    }
}
