//! The one place discovery asks the provider data (`src/diagnosis/providers.json`, each
//! fact with its source and checked date): by the address's domain, and by MX host.

pub use crate::diagnosis::providers::Provider;

/// The provider whose users have addresses at `domain` (`gmail.com` → Gmail).
pub fn by_email_domain(domain: &str) -> Option<&'static Provider> {
    crate::diagnosis::providers::by_email_domain(domain)
}

/// The provider that runs the mail exchanger `mx_host` (`aspmx.l.google.com` → Google
/// Workspace).
pub fn by_mx_host(mx_host: &str) -> Option<&'static Provider> {
    crate::diagnosis::providers::by_mx_host(mx_host)
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
            ("acme-com.mail.protection.outlook.com", "office365"),
        ] {
            assert_eq!(by_mx_host(mx).map(|p| p.name.as_str()), Some(name), "{mx}");
        }
        for mx in ["evil-aspmx.l.google.com.test", "mx.acme.test"] {
            assert!(by_mx_host(mx).is_none(), "{mx}");
        }
        assert_eq!(
            by_email_domain("gmail.com").map(|p| p.name.as_str()),
            Some("gmail")
        );
    }
}
