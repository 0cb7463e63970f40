//! The Mozilla autoconfig file (Thunderbird's "ISP-hosted configuration"):
//! `https://autoconfig.DOMAIN/mail/config-v1.1.xml?emailaddress=ADDRESS`, then
//! `https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml`.
//!
//! Fetched with hyper 1 over our own tokio-rustls connection: the certificate is verified
//! against the same roots as SMTP (plus `--ca-file`), never skipped. Every wait has a
//! deadline, the body is capped at [`MAX_BODY`], at most [`MAX_REDIRECTS`] redirects are
//! followed and only to HTTPS URLs on the mail domain or below it (the rule Thunderbird
//! applies to ISP-hosted configuration: a file elsewhere does not speak for the domain).

use super::dns::Dns;
use crate::tls_mode::TlsMode;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use rustls::pki_types::ServerName;
use rustls::RootCertStore;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The largest autoconfig file read (real ones are a few kB).
pub const MAX_BODY: usize = 64 * 1024;
/// Redirects followed.
pub const MAX_REDIRECTS: usize = 3;

/// One `<outgoingServer type="smtp">` of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutgoingServer {
    /// `<hostname>`, placeholders replaced.
    pub host: String,
    /// `<port>`.
    pub port: u16,
    /// From `<socketType>`: SSL → implicit, STARTTLS → starttls, plain → none.
    pub mode: TlsMode,
    /// `<username>`, placeholders replaced.
    pub username: Option<String>,
}

/// What fetching one URL gave.
#[derive(Debug)]
pub struct Fetched {
    /// The URL asked first.
    pub url: String,
    /// The outgoing servers, or why there are none (its `Display` is one line for the
    /// report).
    pub result: Result<Vec<OutgoingServer>, AutoconfigError>,
}

/// Why one autoconfig location gave no servers, with its evidence. Names and URLs in it
/// are escaped when shown: they come from the network.
#[derive(Debug)]
#[non_exhaustive]
pub enum AutoconfigError {
    /// No complete answer within this time.
    Timeout(Duration),
    /// A 3xx answer without a `Location` header.
    RedirectWithoutLocation,
    /// A redirect to something other than HTTPS (the `Location`).
    RedirectNotHttps(String),
    /// A redirect whose port is not a number (the authority).
    RedirectBadPort(String),
    /// A redirect with an empty host or user information.
    RedirectBadHost,
    /// A redirect away from the mail domain.
    RedirectOutside {
        /// The `Location`.
        location: String,
        /// The mail domain.
        domain: String,
    },
    /// More than [`MAX_REDIRECTS`] redirects.
    TooManyRedirects,
    /// HTTP 404 or 410: there is no file.
    NoFile(u16),
    /// Another HTTP status.
    Status(u16),
    /// The host has no address.
    Dns {
        /// The host looked up.
        host: String,
        /// What DNS said.
        error: super::dns::DnsError,
    },
    /// No address of the host accepted a connection.
    Connect {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The last attempt's detail, from the transport.
        detail: String,
    },
    /// The TLS client could not be configured.
    TlsConfig(rustls::Error),
    /// The host is not a valid TLS server name.
    BadHostName(String),
    /// The TLS handshake failed (the certificate is verified).
    Tls {
        /// The host.
        host: String,
        /// What tokio-rustls said (the rustls error inside).
        error: std::io::Error,
    },
    /// The HTTP exchange failed.
    Http {
        /// The host.
        host: String,
        /// What hyper said.
        error: hyper::Error,
    },
    /// The request could not be built.
    Request(hyper::http::Error),
    /// The body is larger than [`MAX_BODY`].
    TooLarge,
    /// The body is not UTF-8.
    NotUtf8,
    /// The body is not well-formed XML.
    NotXml(roxmltree::Error),
    /// Well-formed XML with another root element (its name).
    NotAutoconfig(String),
    /// No `<outgoingServer type="smtp">` with a usable host, port and socket type.
    NoServer,
}

impl std::fmt::Display for AutoconfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::protocol::escape_bytes as esc;
        match self {
            AutoconfigError::Timeout(t) => {
                write!(f, "no complete answer within {}", crate::transport::secs(*t))
            }
            AutoconfigError::RedirectWithoutLocation => {
                f.write_str("a redirect without a Location header")
            }
            AutoconfigError::RedirectNotHttps(loc) => {
                write!(f, "redirects to {} : only HTTPS is followed", esc(loc.as_bytes()))
            }
            AutoconfigError::RedirectBadPort(a) => {
                write!(f, "a redirect with a bad port: {}", esc(a.as_bytes()))
            }
            AutoconfigError::RedirectBadHost => f.write_str("a redirect with a bad host"),
            AutoconfigError::RedirectOutside { location, domain } => write!(
                f,
                "redirects to {} (outside {domain}): not followed, a file elsewhere does not speak for the domain",
                esc(location.as_bytes())
            ),
            AutoconfigError::TooManyRedirects => {
                write!(f, "more than {MAX_REDIRECTS} redirects: not followed further")
            }
            AutoconfigError::NoFile(status) => write!(f, "no file (HTTP {status})"),
            AutoconfigError::Status(status) => write!(f, "HTTP {status}"),
            AutoconfigError::Dns { host, error } => write!(f, "{host}: {error}"),
            AutoconfigError::Connect { host, port, detail } => {
                write!(f, "cannot connect to {host}:{port}: {detail}")
            }
            AutoconfigError::TlsConfig(e) => e.fmt(f),
            AutoconfigError::BadHostName(host) => write!(f, "{host}: not a host name"),
            AutoconfigError::Tls { host, error } => {
                write!(f, "TLS with {host} failed (the certificate is verified): {error}")
            }
            AutoconfigError::Http { host, error } => write!(f, "HTTP with {host} failed: {error}"),
            AutoconfigError::Request(e) => e.fmt(f),
            AutoconfigError::TooLarge => {
                write!(f, "the file is larger than {} kB: not read", MAX_BODY / 1024)
            }
            AutoconfigError::NotUtf8 => f.write_str("the file is not UTF-8 text"),
            AutoconfigError::NotXml(e) => write!(
                f,
                "the file is not well-formed XML: {}",
                esc(e.to_string().as_bytes())
            ),
            AutoconfigError::NotAutoconfig(root) => write!(
                f,
                "the file is XML but not an autoconfig file (root element <{}>, expected <clientConfig>)",
                esc(root.as_bytes())
            ),
            AutoconfigError::NoServer => f.write_str(
                "the file lists no usable SMTP server (<outgoingServer type=\"smtp\">)",
            ),
        }
    }
}

impl std::error::Error for AutoconfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AutoconfigError::Dns { error, .. } => Some(error),
            AutoconfigError::TlsConfig(e) => Some(e),
            AutoconfigError::Tls { error, .. } => Some(error),
            AutoconfigError::Http { error, .. } => Some(error),
            AutoconfigError::Request(e) => Some(e),
            AutoconfigError::NotXml(e) => Some(e),
            _ => None,
        }
    }
}

/// The HTTPS settings of discovery.
#[derive(Clone)]
pub struct Https {
    /// The resolver.
    pub dns: Dns,
    /// Trust anchors (webpki-roots plus `--ca-file`).
    pub roots: Arc<RootCertStore>,
    /// Deadline for each step.
    pub timeout: Duration,
    /// The HTTPS port (443; tests move it).
    pub port: u16,
}

/// Tries the two autoconfig locations in order; stops at the first that gives servers.
pub async fn fetch(https: &Https, domain: &str, address: &str) -> Vec<Fetched> {
    let locations = [
        (
            format!("autoconfig.{domain}"),
            format!(
                "/mail/config-v1.1.xml?emailaddress={}",
                query_escape(address)
            ),
        ),
        (
            domain.to_owned(),
            "/.well-known/autoconfig/mail/config-v1.1.xml".to_owned(),
        ),
    ];
    let mut out = Vec::new();
    for (host, path) in locations {
        let url = format!("https://{host}{}{path}", port_suffix(https.port));
        let result = match get(https, domain, host, https.port, path).await {
            Ok(body) => parse(&body, address),
            Err(e) => Err(e),
        };
        let found = result.is_ok();
        out.push(Fetched { url, result });
        if found {
            break;
        }
    }
    out
}

fn port_suffix(port: u16) -> String {
    if port == 443 {
        String::new()
    } else {
        format!(":{port}")
    }
}

fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// True when `host` is `domain` or below it.
fn within(host: &str, domain: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == domain || h.ends_with(&format!(".{domain}"))
}

/// GET with redirects; the body of the final 200.
async fn get(
    https: &Https,
    domain: &str,
    mut host: String,
    mut port: u16,
    mut path: String,
) -> Result<Vec<u8>, AutoconfigError> {
    for _ in 0..=MAX_REDIRECTS {
        let (status, location, body) =
            tokio::time::timeout(https.timeout * 2, get_once(https, &host, port, &path))
                .await
                .map_err(|_| AutoconfigError::Timeout(https.timeout * 2))??;
        match status {
            200 => return Ok(body),
            301 | 302 | 303 | 307 | 308 => {
                let loc = location.ok_or(AutoconfigError::RedirectWithoutLocation)?;
                let (h, p, pa) = resolve_location(&loc, &host, port)?;
                if !within(&h, domain) {
                    return Err(AutoconfigError::RedirectOutside {
                        location: loc,
                        domain: domain.to_owned(),
                    });
                }
                (host, port, path) = (h, p, pa);
            }
            404 | 410 => return Err(AutoconfigError::NoFile(status)),
            other => return Err(AutoconfigError::Status(other)),
        }
    }
    Err(AutoconfigError::TooManyRedirects)
}

/// A Location header against the current URL: HTTPS only.
fn resolve_location(
    loc: &str,
    host: &str,
    port: u16,
) -> Result<(String, u16, String), AutoconfigError> {
    if loc.starts_with('/') && !loc.starts_with("//") {
        return Ok((host.to_owned(), port, loc.to_owned()));
    }
    let Some(rest) = loc.strip_prefix("https://") else {
        return Err(AutoconfigError::RedirectNotHttps(loc.to_owned()));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    let (h, p) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| AutoconfigError::RedirectBadPort(authority.to_owned()))?,
        ),
        None => (authority, 443),
    };
    if h.is_empty() || authority.contains('@') {
        return Err(AutoconfigError::RedirectBadHost);
    }
    Ok((h.to_ascii_lowercase(), p, path))
}

async fn get_once(
    https: &Https,
    host: &str,
    port: u16,
    path: &str,
) -> Result<(u16, Option<String>, Vec<u8>), AutoconfigError> {
    let ips = https
        .dns
        .addrs(host)
        .await
        .map_err(|error| AutoconfigError::Dns {
            host: host.to_owned(),
            error,
        })?;
    let addrs: Vec<SocketAddr> = ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    let (tcp, attempts) = crate::transport::connect(&addrs, https.timeout).await;
    let tcp = tcp.ok_or_else(|| {
        let a = attempts
            .last()
            .map(|a| a.detail.clone())
            .unwrap_or_default();
        AutoconfigError::Connect {
            host: host.to_owned(),
            port,
            detail: a,
        }
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(AutoconfigError::TlsConfig)?
        .with_root_certificates(https.roots.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| AutoconfigError::BadHostName(host.to_owned()))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|error| AutoconfigError::Tls {
            host: host.to_owned(),
            error,
        })?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|error| http_error(host, error))?;
    let driver = tokio::spawn(conn);
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, host)
        .header(
            hyper::header::USER_AGENT,
            concat!("smtprobe/", env!("CARGO_PKG_VERSION")),
        )
        .header(hyper::header::ACCEPT, "application/xml, text/xml")
        .body(Empty::<Bytes>::new())
        .map_err(AutoconfigError::Request)?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|error| http_error(host, error))?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(hyper::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = if status == 200 {
        Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|_| AutoconfigError::TooLarge)?
            .to_bytes()
            .to_vec()
    } else {
        Vec::new()
    };
    driver.abort();
    Ok((status, location, body))
}

fn http_error(host: &str, error: hyper::Error) -> AutoconfigError {
    AutoconfigError::Http {
        host: host.to_owned(),
        error,
    }
}

/// Reads the `<outgoingServer type="smtp">` entries of a config-v1.1 file.
pub fn parse(body: &[u8], address: &str) -> Result<Vec<OutgoingServer>, AutoconfigError> {
    let text = std::str::from_utf8(body).map_err(|_| AutoconfigError::NotUtf8)?;
    let doc = roxmltree::Document::parse(text).map_err(AutoconfigError::NotXml)?;
    let root = doc.root_element();
    if root.tag_name().name() != "clientConfig" {
        return Err(AutoconfigError::NotAutoconfig(
            root.tag_name().name().to_owned(),
        ));
    }
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    let fill = |s: &str| {
        s.trim()
            .replace("%EMAILADDRESS%", address)
            .replace("%EMAILLOCALPART%", local)
            .replace("%EMAILDOMAIN%", domain)
    };
    let child = |n: roxmltree::Node, tag: &str| {
        n.children()
            .find(|c| c.has_tag_name(tag))
            .and_then(|c| c.text())
            .map(fill)
    };
    let mut out = Vec::new();
    for server in root
        .descendants()
        .filter(|n| n.has_tag_name("outgoingServer") && n.attribute("type") == Some("smtp"))
    {
        let Some(host) = child(server, "hostname").filter(|h| is_host_name(h)) else {
            continue;
        };
        let Some(port) = child(server, "port")
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0)
        else {
            continue;
        };
        let mode = match child(server, "socketType").as_deref() {
            Some("SSL") => TlsMode::Implicit,
            Some("STARTTLS") => TlsMode::Starttls,
            Some("plain") => TlsMode::None,
            _ => continue,
        };
        out.push(OutgoingServer {
            host: host.to_ascii_lowercase(),
            port,
            mode,
            username: child(server, "username").filter(|u| !u.chars().any(char::is_control)),
        });
    }
    if out.is_empty() {
        return Err(AutoconfigError::NoServer);
    }
    Ok(out)
}

fn is_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"<?xml version="1.0"?>
<clientConfig version="1.1">
  <emailProvider id="acme.test">
    <incomingServer type="imap"><hostname>imap.acme.test</hostname><port>993</port><socketType>SSL</socketType></incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.%EMAILDOMAIN%</hostname>
      <port>465</port>
      <socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username>
      <authentication>password-cleartext</authentication>
    </outgoingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.acme.test</hostname><port>587</port><socketType>STARTTLS</socketType>
    </outgoingServer>
  </emailProvider>
</clientConfig>"#;

    #[test]
    fn reads_outgoing_servers_with_placeholders() {
        let s = parse(FILE.as_bytes(), "me@acme.test").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            (
                s[0].host.as_str(),
                s[0].port,
                s[0].mode,
                s[0].username.as_deref()
            ),
            (
                "smtp.acme.test",
                465,
                TlsMode::Implicit,
                Some("me@acme.test")
            )
        );
        assert_eq!(s[1].mode, TlsMode::Starttls);
    }

    #[test]
    fn bad_files_get_one_clear_line() {
        for (body, says) in [
            ("<clientConfig><outgoingServer", "not well-formed XML"),
            ("<html><body>hello</body></html>", "not an autoconfig file"),
            ("<clientConfig version=\"1.1\"/>", "no usable SMTP server"),
            ("\u{ff}", "not well-formed"),
        ] {
            let e = parse(body.as_bytes(), "me@acme.test")
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{body}: {e}");
        }
        let e = parse(&[0xff, 0xfe], "x@y.z").unwrap_err();
        assert!(matches!(e, AutoconfigError::NotUtf8), "{e}");
        assert!(e.to_string().contains("UTF-8"));
    }

    #[test]
    fn redirects_stay_on_https_and_the_domain() {
        assert_eq!(
            resolve_location("/x.xml", "acme.test", 443).unwrap(),
            ("acme.test".into(), 443, "/x.xml".into())
        );
        assert!(resolve_location("http://acme.test/x", "acme.test", 443).is_err());
        let (h, p, _) =
            resolve_location("https://conf.acme.test:8443/x", "acme.test", 443).unwrap();
        assert_eq!((h.as_str(), p), ("conf.acme.test", 8443));
        assert!(within("conf.acme.test", "acme.test"));
        assert!(!within("evilacme.test", "acme.test"));
    }
}
