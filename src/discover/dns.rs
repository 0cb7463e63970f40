//! DNS through hickory-resolver: MX, SRV and address lookups with typed answers.
//!
//! getaddrinfo cannot say "this name exists but has no MX" or "the MX is a CNAME", and
//! has no MX or SRV at all; hickory gives the response code and the records. The system
//! configuration (`/etc/resolv.conf`) is used unless a server is given explicitly
//! (`--dns-server IP:PORT`, a testing aid: tests never touch real DNS).

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfigGroup, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{ResolveError, TokioResolver};

use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Why a lookup gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum DnsError {
    /// NXDOMAIN: the name does not exist (RFC 1035 §4.1.1 RCODE 3).
    NoSuchDomain,
    /// The name exists but has no record of the asked type (NODATA, RFC 2308 §2.2).
    NoRecords,
    /// The resolver could not answer (SERVFAIL, timeout, no network).
    LookupFailed {
        /// What the resolver said.
        detail: String,
    },
}

impl std::fmt::Display for DnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DnsError::NoSuchDomain => f.write_str("no such domain (NXDOMAIN)"),
            DnsError::NoRecords => f.write_str("no records of this type"),
            DnsError::LookupFailed { detail } => write!(f, "lookup failed: {detail}"),
        }
    }
}

impl std::error::Error for DnsError {}

/// The resolver could not be set up: the system configuration is unreadable.
#[derive(Debug)]
pub struct SystemConfError(ResolveError);

impl std::fmt::Display for SystemConfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot read the system DNS configuration (/etc/resolv.conf): {}",
            self.0
        )
    }
}

impl std::error::Error for SystemConfError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn classify(e: &ResolveError) -> DnsError {
    use hickory_resolver::proto::op::ResponseCode;
    use hickory_resolver::proto::ProtoErrorKind;
    let detail = || DnsError::LookupFailed {
        detail: crate::protocol::escape_bytes(e.to_string().as_bytes()),
    };
    match e.proto().map(|p| p.kind()) {
        // The response code decides: NXDOMAIN is "no such name", NOERROR with no answer
        // is NODATA, anything else (SERVFAIL, REFUSED) is a failed lookup.
        Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) => match *response_code {
            ResponseCode::NXDomain => DnsError::NoSuchDomain,
            ResponseCode::NoError => DnsError::NoRecords,
            other => DnsError::LookupFailed {
                detail: format!("the DNS server answered {other}"),
            },
        },
        _ => detail(),
    }
}

/// A domain's MX answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum MxAnswer {
    /// Mail exchangers, lowest preference first (RFC 5321 §5.1).
    Hosts {
        /// `(preference, host)` with the trailing dot removed.
        hosts: Vec<(u16, String)>,
    },
    /// RFC 7505 null MX (`0 .`): the domain accepts no mail.
    NullMx,
}

/// One SRV target (RFC 2782), lowest priority first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SrvTarget {
    /// Priority (lower first).
    pub priority: u16,
    /// Weight among equal priorities.
    pub weight: u16,
    /// The host, trailing dot removed.
    pub host: String,
    /// The port.
    pub port: u16,
}

/// A resolver with typed answers.
#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
    /// Where the answers come from, for the report.
    pub source: String,
}

impl Dns {
    /// The system resolver configuration, or `server` when given (a testing aid).
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<Dns, SystemConfError> {
        let mut opts = ResolverOpts::default();
        opts.timeout = timeout.min(Duration::from_secs(10));
        opts.attempts = 2;
        // RFC 8305 §3: ask for AAAA and A together; [`Dns::addrs`] puts IPv6 first and
        // Happy Eyeballs interleaves.
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        // Keep the CNAME records of an answer: an MX target must not be an alias
        // (RFC 2181 §10.3).
        opts.preserve_intermediates = true;
        let (config, source) = match server {
            Some(addr) => {
                // Only the given server: no hosts file, no search domains.
                opts.use_hosts_file = ResolveHosts::Never;
                opts.ndots = 0;
                let group = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
                (
                    ResolverConfig::from_parts(None, vec![], group),
                    format!("DNS server {addr} ({})", crate::setting::Setting::DnsServer),
                )
            }
            None => {
                let (config, sys_opts) =
                    hickory_resolver::system_conf::read_system_conf().map_err(SystemConfError)?;
                opts.ndots = sys_opts.ndots;
                (config, "the system resolver (/etc/resolv.conf)".to_owned())
            }
        };
        let resolver =
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
                .with_options(opts)
                .build();
        Ok(Dns { resolver, source })
    }

    /// Fully qualified, so no search domain is appended.
    fn fqdn(name: &str) -> String {
        if name.ends_with('.') {
            name.to_owned()
        } else {
            format!("{name}.")
        }
    }

    /// The domain's MX records (RFC 5321 §5.1), or RFC 7505 null MX.
    pub async fn mx(&self, domain: &str) -> Result<MxAnswer, DnsError> {
        let lookup = self
            .resolver
            .mx_lookup(Self::fqdn(domain))
            .await
            .map_err(|e| classify(&e))?;
        let mut hosts: Vec<(u16, String)> = lookup
            .iter()
            .map(|mx| (mx.preference(), trim_dot(&mx.exchange().to_ascii())))
            .collect();
        // RFC 7505 §3: a single MX with an empty (root) exchange.
        if hosts.iter().any(|(_, h)| h.is_empty()) {
            return Ok(MxAnswer::NullMx);
        }
        if hosts.is_empty() {
            return Err(DnsError::NoRecords);
        }
        hosts.sort();
        Ok(MxAnswer::Hosts { hosts })
    }

    /// SRV records for `name` (`_submissions._tcp.DOMAIN`), by priority. A target of
    /// `.` means "this service is decidedly not available" (RFC 2782) and is dropped.
    pub async fn srv(&self, name: &str) -> Result<Vec<SrvTarget>, DnsError> {
        let lookup = self
            .resolver
            .srv_lookup(Self::fqdn(name))
            .await
            .map_err(|e| classify(&e))?;
        let mut out: Vec<SrvTarget> = lookup
            .iter()
            .map(|s| SrvTarget {
                priority: s.priority(),
                weight: s.weight(),
                host: trim_dot(&s.target().to_ascii()),
                port: s.port(),
            })
            .filter(|s| !s.host.is_empty() && s.port != 0)
            .collect();
        out.sort_by_key(|s| (s.priority, std::cmp::Reverse(s.weight)));
        if out.is_empty() {
            return Err(DnsError::NoRecords);
        }
        Ok(out)
    }

    /// The host's addresses, IPv6 first.
    pub async fn addrs(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let lookup = self
            .resolver
            .lookup_ip(Self::fqdn(host))
            .await
            .map_err(|e| classify(&e))?;
        let mut out: Vec<IpAddr> = Vec::new();
        for ip in lookup.iter() {
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
        if out.is_empty() {
            return Err(DnsError::NoRecords);
        }
        // RFC 6724 §10.3 / RFC 8305 §4: IPv6 first (a stable sort keeps the order within
        // each family).
        out.sort_by_key(|ip| ip.is_ipv4());
        Ok(out)
    }

    /// The alias target when `host` is a CNAME (an MX target must not be one, RFC 2181
    /// §10.3: many mail servers refuse such an MX).
    pub async fn cname_of(&self, host: &str) -> Option<String> {
        let lookup = self
            .resolver
            .lookup(Self::fqdn(host), RecordType::A)
            .await
            .ok()?;
        let wanted = Self::fqdn(host).to_ascii_lowercase();
        lookup.record_iter().find_map(|r| match r.data() {
            RData::CNAME(c) if r.name().to_ascii().to_ascii_lowercase() == wanted => {
                Some(trim_dot(&c.0.to_ascii()))
            }
            _ => None,
        })
    }
}

fn trim_dot(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Resolves a host for a check through hickory (used when `--dns-server` is given), with
/// the same typed failures as the getaddrinfo path.
pub async fn resolve_for_check(
    server: SocketAddr,
    host: &str,
    timeout: Duration,
) -> Result<Vec<IpAddr>, crate::failure::Failure> {
    use crate::failure::{DnsErrorKind, Failure};
    let dns = Dns::new(Some(server), timeout).map_err(|e| Failure::Dns {
        kind: DnsErrorKind::LookupFailed,
        detail: e.to_string(),
    })?;
    match tokio::time::timeout(timeout, dns.addrs(host)).await {
        Err(_) => Err(Failure::Dns {
            kind: DnsErrorKind::LookupFailed,
            detail: format!(
                "no answer from {server} within {}",
                crate::transport::secs(timeout)
            ),
        }),
        Ok(Ok(a)) => Ok(a),
        Ok(Err(e)) => Err(Failure::Dns {
            kind: match e {
                DnsError::NoSuchDomain | DnsError::NoRecords => DnsErrorKind::NoSuchHost,
                DnsError::LookupFailed { .. } => DnsErrorKind::LookupFailed,
            },
            detail: format!("{host}: {e} (from {server})"),
        }),
    }
}
