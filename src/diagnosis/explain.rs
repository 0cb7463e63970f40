//! `smtprobe explain X`: the page for a diagnosis code, or the meaning of a reply code
//! (`535`) or an enhanced status code (`5.7.8`).

use super::{codes, providers, status};
use crate::protocol::EnhancedCode;
use std::fmt;
use std::fmt::Write as _;

/// Why [`explain`] has no page for the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExplainError {
    /// Nothing matches; `suggestions` lists close diagnosis codes.
    Unknown {
        /// The query, escaped for display.
        query: String,
        /// Close diagnosis codes, best first (may be empty).
        suggestions: Vec<&'static str>,
    },
}

impl fmt::Display for ExplainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExplainError::Unknown { query, suggestions } => {
                write!(
                    f,
                    "no diagnosis code, reply code, enhanced status code or provider {query:?}"
                )?;
                if suggestions.is_empty() {
                    write!(
                        f,
                        "; known codes: {}",
                        codes::all()
                            .iter()
                            .map(|c| c.code.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                } else {
                    write!(f, "; did you mean: {}?", suggestions.join(", "))
                }
            }
        }
    }
}

impl std::error::Error for ExplainError {}

/// Renders the explanation for a diagnosis code (`auth.bad-credentials`), a reply code
/// (`535`) or an enhanced status code (`5.7.8`), as plain text.
pub fn explain(query: &str) -> Result<String, ExplainError> {
    let q = query.trim();
    if let Some(info) = codes::lookup(&q.to_ascii_lowercase()) {
        return Ok(code_page(info));
    }
    if let Some(p) = providers::by_name(q) {
        return Ok(provider_page(p));
    }
    if q.len() == 3 && q.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = q.parse::<u16>() {
            if (200..600).contains(&n) {
                return Ok(reply_page(n));
            }
        }
    }
    if let Some(e) = EnhancedCode::parse(q) {
        return Ok(status::describe_enhanced(e) + "\n");
    }
    Err(ExplainError::Unknown {
        query: crate::protocol::escape_str(q),
        suggestions: suggest(q),
    })
}

fn reply_page(code: u16) -> String {
    let mut s = status::describe_reply_code(code);
    let _ = write!(
        s,
        "\n  class    {}: {}\n  category {}: {}\n",
        code / 100,
        status::reply_class(code),
        (code / 10) % 10,
        status::reply_category(code)
    );
    s
}

fn code_page(info: &codes::CodeInfo) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}: {}\n", info.code, info.title);
    let _ = writeln!(s, "On the wire:");
    for line in info.wire.lines() {
        let _ = writeln!(s, "  {line}");
    }
    let _ = writeln!(s, "\nWhy it happens:\n  {}\n", info.why);
    let _ = writeln!(s, "How to fix it:\n  {}", info.fix);
    let notes: Vec<(&str, &str)> = providers::all()
        .iter()
        .filter_map(|p| {
            p.fix_for(info.code.as_str())
                .map(|f| (p.display_name.as_str(), f))
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(s, "\nProvider notes:");
        for (name, note) in notes {
            let _ = writeln!(s, "  {name}: {note}");
        }
    }
    let _ = writeln!(s, "\nStandards: {}", info.rfcs.join(", "));
    s
}

/// The list `smtprobe providers` prints: one line per provider with its preferred
/// settings, then where the facts come from.
pub fn providers_list() -> String {
    let mut s = String::new();
    let width = providers::all()
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(8);
    for p in providers::all() {
        let _ = writeln!(
            s,
            "{:width$}  {:34}  {}",
            p.name,
            p.display_name,
            p.settings_line()
        );
    }
    let _ = writeln!(
        s,
        "\nEvery fact has a source and the date it was checked: smtprobe explain NAME (e.g. smtprobe explain office365)."
    );
    s
}

/// The page for one provider: settings, recognition, facts, fixes, each with its source.
pub fn provider_page(p: &providers::Provider) -> String {
    let mut s = String::new();
    let mut cited: Vec<&str> = Vec::new();
    let mut cite = |key: &str| -> String {
        let n = match cited.iter().position(|k| *k == key) {
            Some(i) => i + 1,
            None => {
                cited.push(
                    providers::sources()
                        .get_key_value(key)
                        .map_or("", |(k, _)| k.as_str()),
                );
                cited.len()
            }
        };
        format!("[{n}]")
    };
    let kind = match p.kind {
        providers::Kind::Mailbox => "mailbox provider",
        providers::Kind::Business => "business tenant service",
        providers::Kind::Relay => "organisation relay",
        providers::Kind::SendingService => "sending service",
    };
    let _ = writeln!(s, "{}: {} ({kind})\n", p.name, p.display_name);
    let _ = writeln!(s, "Submission settings:");
    for st in p.submission() {
        let note = st
            .note
            .as_deref()
            .map(|n| format!("; {n}"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  {}:{} {}{note} {}",
            st.host,
            st.port,
            providers::mode_label(st.mode),
            cite(&st.source)
        );
    }
    let user = match (p.username.form, &p.username.value) {
        (providers::UsernameForm::FullAddress, _) => "your full email address".to_owned(),
        (providers::UsernameForm::Literal, Some(v)) => format!("the literal string {v}"),
        _ => "as shown in the service's settings".to_owned(),
    };
    let _ = writeln!(s, "  user name: {user} {}", cite(&p.username.source));
    if let Some(ap) = &p.app_password {
        let _ = writeln!(s, "  app password: {} {}", ap.how, cite(&ap.source));
    }
    let _ = writeln!(s, "  help: {}\n", p.help_url);
    let _ = writeln!(s, "Recognised by:");
    for (label, list) in [
        ("email domains", &p.email_domains),
        ("submission hosts", &p.submission_hosts),
        ("also on hosts", &p.shared_hosts),
        ("MX hosts", &p.mx_hosts),
        ("greeting words", &p.banner),
        ("certificate names", &p.certificate_names),
    ] {
        if !list.values.is_empty() {
            let _ = writeln!(
                s,
                "  {label}: {} {}",
                list.values.join(", "),
                cite(&list.source)
            );
        }
    }
    if !p.facts.is_empty() {
        let _ = writeln!(s, "\nWhat to know:");
        for f in &p.facts {
            let _ = writeln!(s, "  - {} {}", f.text, cite(&f.source));
        }
    }
    if !p.fixes.is_empty() {
        let _ = writeln!(s, "\nFixes by diagnosis code:");
        for f in &p.fixes {
            let _ = writeln!(s, "  {}: {} {}", f.code, f.text, cite(&f.source));
        }
    }
    let _ = writeln!(s, "\nSources:");
    for (i, key) in cited.iter().enumerate() {
        if let Some(src) = providers::source(key) {
            let url = src.url.as_deref().unwrap_or("(no URL known)");
            let note = src
                .note
                .as_deref()
                .map(|n| format!("\n      note: {n}"))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "  [{}] {} ({}, checked {})\n      {url}{note}",
                i + 1,
                src.title,
                src.kind,
                src.checked
            );
        }
    }
    s
}

/// Close diagnosis codes: substring matches first, then small edit distance.
fn suggest(q: &str) -> Vec<&'static str> {
    let q = q.to_ascii_lowercase();
    if q.is_empty() {
        return Vec::new();
    }
    let mut scored: Vec<(usize, &'static str)> = codes::all()
        .iter()
        .filter_map(|c| {
            if c.code.as_str().contains(&q) || (q.len() >= 4 && q.contains(c.code.as_str())) {
                Some((0, c.code.as_str()))
            } else {
                let d = providers::osa_distance(&q, c.code.as_str());
                (d <= 3).then_some((d, c.code.as_str()))
            }
        })
        .collect();
    scored.sort_by_key(|(d, _)| *d);
    scored.into_iter().take(5).map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_page() {
        for info in codes::all() {
            let page = explain(info.code.as_str()).unwrap();
            assert!(page.starts_with(info.code.as_str()), "{page}");
            assert!(page.contains("On the wire:") && page.contains("How to fix it:"));
            assert!(page.contains("RFC"), "{}", info.code);
        }
    }

    #[test]
    fn provider_notes_appear() {
        let page = explain("auth.bad-credentials").unwrap();
        assert!(page.contains("Gmail"), "{page}");
        assert!(page.contains("apppasswords"), "{page}");
    }

    #[test]
    fn provider_pages_show_sources_and_dates() {
        for p in providers::all() {
            let page = explain(&p.name).unwrap();
            assert!(page.starts_with(&p.name), "{page}");
            assert!(
                page.contains("Submission settings:") && page.contains("Sources:"),
                "{page}"
            );
            assert!(page.contains("checked 20"), "{page}");
            assert!(page.contains("https://"), "{}", p.name);
        }
        let page = explain("office365").unwrap();
        assert!(page.contains("end of December 2026"), "{page}");
        assert!(page.contains("*.mail.protection.outlook.com"), "{page}");
        let list = providers_list();
        for p in providers::all() {
            assert!(list.contains(&p.name) && list.contains(p.host()), "{list}");
        }
    }

    #[test]
    fn reply_and_enhanced_codes() {
        let p = explain("535").unwrap();
        assert!(
            p.contains("Authentication credentials invalid") && p.contains("RFC 4954"),
            "{p}"
        );
        assert!(p.contains("permanent"), "{p}");
        let p = explain(" 5.7.8 ").unwrap();
        assert!(p.contains("Permanent failure"), "{p}");
        assert!(p.contains("Security or policy"), "{p}");
        assert!(p.contains("Authentication credentials invalid"), "{p}");
        assert!(explain("4.7.0").unwrap().contains("Persistent transient"));
        assert!(explain("5.7.139").unwrap().contains("not registered"));
    }

    #[test]
    fn unknown_input_lists_close_matches() {
        let e = explain("auth.bad-credential").unwrap_err();
        let ExplainError::Unknown { suggestions, .. } = &e;
        assert_eq!(suggestions.first(), Some(&"auth.bad-credentials"));
        assert!(e.to_string().contains("did you mean"));
        let e = explain("tls").unwrap_err().to_string();
        assert!(e.contains("tls.hostname-mismatch"), "{e}");
        let e = explain("zzzzzzzzzzzzzzz\u{1b}[31m")
            .unwrap_err()
            .to_string();
        assert!(!e.contains('\u{1b}') && e.contains("known codes"), "{e}");
        for q in ["", "999", "199", "3.0.0", "5.7", "ok.", "\0"] {
            assert!(explain(q).is_err(), "{q:?}");
        }
    }
}
