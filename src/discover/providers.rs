//! The one place discovery asks the provider data.
//!
//! MERGE NOTE: the diagnosis rule-table branch provides
//! `crate::diagnosis::providers::by_email_domain` and `by_mx_host` with MX data for many
//! providers. Until it lands, these two functions stand in: `by_email_domain` over the
//! current table's `mail_domains`, `by_mx_host` over the small `MX_PATTERNS` table below
//! (Google Workspace and Microsoft 365 only). At merge, make both bodies call the real
//! functions and delete `MX_PATTERNS`.

pub use crate::diagnosis::providers::Provider;

/// The provider whose mail domain `domain` is (`gmail.com` → Gmail).
pub fn by_email_domain(domain: &str) -> Option<&'static Provider> {
    crate::diagnosis::providers::by_mail_domain(domain)
}

/// MX host patterns: `*.suffix` matches any name below `suffix`, anything else matches
/// exactly. (pattern, provider name, source, checked).
const MX_PATTERNS: &[(&str, &str, &str, &str)] = &[
    // Google Workspace: smtp.google.com for domains set up since April 2023, the
    // ASPMX set before; Google's "Set up MX records" page, as quoted by
    // https://intodns.ai/citations/google-workspace-mx-records
    (
        "smtp.google.com",
        "gmail",
        "https://intodns.ai/citations/google-workspace-mx-records",
        "2026-12-01",
    ),
    (
        "aspmx.l.google.com",
        "gmail",
        "https://intodns.ai/citations/google-workspace-mx-records",
        "2026-12-01",
    ),
    (
        "*.aspmx.l.google.com",
        "gmail",
        "https://intodns.ai/citations/google-workspace-mx-records",
        "2026-12-01",
    ),
    (
        "*.googlemail.com",
        "gmail",
        "https://intodns.ai/citations/google-workspace-mx-records",
        "2026-12-01",
    ),
    // Microsoft 365: DOMAIN-TLD.mail.protection.outlook.com, and since March 2024 for
    // new domains DOMAIN-TLD.RANDOM.mx.microsoft.
    (
        "*.mail.protection.outlook.com",
        "office365",
        "https://c7solutions.com/2024/02/what-is-mx-microsoft",
        "2026-12-01",
    ),
    (
        "*.mx.microsoft",
        "office365",
        "https://c7solutions.com/2024/02/what-is-mx-microsoft",
        "2026-12-01",
    ),
];

/// The provider that runs the mail exchanger `mx_host` (`aspmx.l.google.com` → Google
/// Workspace).
pub fn by_mx_host(mx_host: &str) -> Option<&'static Provider> {
    let h = mx_host.trim_end_matches('.').to_ascii_lowercase();
    MX_PATTERNS.iter().find_map(|(pat, name, _, _)| {
        let hit = match pat.strip_prefix("*.") {
            Some(suffix) => h.len() > suffix.len() && h.ends_with(&format!(".{suffix}")),
            None => h == *pat,
        };
        hit.then(|| crate::diagnosis::providers::by_name(name))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mx_hosts_map_to_providers() {
        for (mx, name) in [
            ("ASPMX.L.GOOGLE.COM.", "gmail"),
            ("alt2.aspmx.l.google.com", "gmail"),
            ("smtp.google.com", "gmail"),
            ("aspmx2.googlemail.com", "gmail"),
            ("acme-com.mail.protection.outlook.com", "office365"),
        ] {
            assert_eq!(by_mx_host(mx).map(|p| p.name), Some(name), "{mx}");
        }
        for mx in [
            "googlemail.com",
            "evil-aspmx.l.google.com.test",
            "mx.acme.test",
        ] {
            assert!(by_mx_host(mx).is_none(), "{mx}");
        }
        assert_eq!(by_email_domain("gmail.com").map(|p| p.name), Some("gmail"));
    }
}
