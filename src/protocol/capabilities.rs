//! EHLO capabilities (RFC 5321 §4.1.1.1): the keywords after the first line of a 250 reply.
//!
//! Unknown keywords are kept (a teaching view shows them, and a diagnosis may want them).

use super::escape::escape_bytes;
use super::reply::Reply;

/// One advertised extension: keyword (upper-cased) and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// `AUTH`, `SIZE`, `STARTTLS`, … upper-cased.
    pub keyword: String,
    /// The space-separated parameters as sent (`LOGIN`, `PLAIN`, …).
    pub params: Vec<String>,
}

impl Extension {
    /// One EHLO line's text after `250-` / `250 ` (`SIZE 35882577`), escaped where it is
    /// captured; `None` for an empty line.
    pub fn parse(text: &[u8]) -> Option<Extension> {
        // Old servers announce `AUTH=LOGIN PLAIN`: treat `=` as a separator.
        let mut words = text
            .split(|&b| b == b' ' || b == b'=')
            .filter(|w| !w.is_empty());
        let keyword = escape_bytes(&words.next()?.to_ascii_uppercase());
        Some(Extension {
            keyword,
            params: words.map(escape_bytes).collect(),
        })
    }
}

/// What a server announced in its EHLO reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The first line's text: the server's name and greeting.
    pub domain_line: String,
    /// Every extension line in order.
    pub extensions: Vec<Extension>,
}

impl Capabilities {
    /// Reads capabilities from a positive EHLO reply.
    ///
    /// Every word is escaped here, where it is captured (control bytes, terminal escapes
    /// and invalid UTF-8 become `\xNN`): keywords and mechanism names end up in the
    /// report, the JSON and diagnosis summaries, and must never carry raw server bytes.
    pub fn from_ehlo(reply: &Reply) -> Capabilities {
        let mut texts = reply.raw_texts();
        let domain_line = texts.next().map(escape_bytes).unwrap_or_default();
        let extensions = texts.filter_map(Extension::parse).collect();
        Capabilities {
            domain_line,
            extensions,
        }
    }

    /// The extension with this keyword, if announced.
    pub fn get(&self, keyword: &str) -> Option<&Extension> {
        self.extensions
            .iter()
            .find(|e| e.keyword.eq_ignore_ascii_case(keyword))
    }

    /// True when the keyword was announced.
    pub fn has(&self, keyword: &str) -> bool {
        self.get(keyword).is_some()
    }

    /// SASL mechanisms from every AUTH line (upper-cased, deduplicated, in order).
    pub fn auth_mechanisms(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in self.extensions.iter().filter(|e| e.keyword == "AUTH") {
            for m in &e.params {
                let m = m.to_ascii_uppercase();
                if !out.contains(&m) {
                    out.push(m);
                }
            }
        }
        out
    }

    /// True when AUTH was announced at all.
    pub fn offers_auth(&self) -> bool {
        self.has("AUTH")
    }

    /// The SIZE limit in bytes, when announced with a number (RFC 1870); 0 means no limit.
    pub fn size_limit(&self) -> Option<u64> {
        self.get("SIZE")?.params.first()?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_after_tls() {
        let r = Reply::from_lines(&[
            "250-smtp.gmail.com at your service, [203.0.113.7]",
            "250-SIZE 35882577",
            "250-8BITMIME",
            "250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH",
            "250-ENHANCEDSTATUSCODES",
            "250-PIPELINING",
            "250-CHUNKING",
            "250 SMTPUTF8",
        ])
        .unwrap();
        let c = Capabilities::from_ehlo(&r);
        assert_eq!(
            c.domain_line,
            "smtp.gmail.com at your service, [203.0.113.7]"
        );
        assert_eq!(c.size_limit(), Some(35882577));
        assert!(c.has("pipelining") && !c.has("STARTTLS"));
        assert_eq!(
            c.auth_mechanisms(),
            [
                "LOGIN",
                "PLAIN",
                "XOAUTH2",
                "PLAIN-CLIENTTOKEN",
                "OAUTHBEARER",
                "XOAUTH"
            ]
        );
    }

    #[test]
    fn old_auth_equals_form_and_unknown_keywords() {
        let r = Reply::from_lines(&[
            "250-mx",
            "250-AUTH=LOGIN",
            "250-X-WEIRD a b",
            "250 auth plain login",
        ])
        .unwrap();
        let c = Capabilities::from_ehlo(&r);
        assert_eq!(c.auth_mechanisms(), ["LOGIN", "PLAIN"]);
        assert_eq!(c.get("X-WEIRD").unwrap().params, ["a", "b"]);
    }

    #[test]
    fn terminal_escapes_in_ehlo_keywords_are_escaped_at_capture() {
        let r = Reply::from_lines(&[
            &b"250-mx\x1b[2J"[..],
            b"250-\x1b[31mSTARTTLS",
            b"250 AUTH \x1b]0;owned\x07PLAIN \xff",
        ])
        .unwrap();
        let c = Capabilities::from_ehlo(&r);
        assert_eq!(c.domain_line, "mx\\x1b[2J");
        assert_eq!(c.extensions[0].keyword, "\\x1b[31MSTARTTLS");
        assert!(!c.has("STARTTLS"), "a mangled keyword is not STARTTLS");
        assert_eq!(
            c.get("AUTH").unwrap().params,
            ["\\x1b]0;owned\\x07PLAIN", "\\xff"]
        );
        let mut all = vec![c.domain_line.clone()];
        for e in &c.extensions {
            all.push(e.keyword.clone());
            all.extend(e.params.iter().cloned());
        }
        all.extend(c.auth_mechanisms());
        for w in all {
            assert!(!w.chars().any(char::is_control), "{w:?}");
        }
    }
}
