//! From an email address to SMTP settings that work: `smtprobe discover ADDRESS` and
//! `smtprobe check ADDRESS`.
//!
//! Sources, in order (the order Thunderbird's account setup uses, with MX and SRV in the
//! middle), each reported with what it said:
//! 1. the bundled provider table, by the address's domain;
//! 2. the domain's MX records, mapped to a provider (Google Workspace, Microsoft 365, …);
//! 3. SRV records `_submissions._tcp` (implicit TLS) and `_submission._tcp` (STARTTLS),
//!    RFC 6186 §3.1 and RFC 8314 §5.1;
//! 4. the Mozilla autoconfig file over verified HTTPS (`autoconfig.rs`);
//! 5. guesses: `smtp.DOMAIN`, `mail.DOMAIN` (only when nothing above gave a server).
//!
//! Every candidate host is then probed without credentials, a bounded number at once, on
//! its documented port and on 465 (implicit TLS), 587 (STARTTLS), 25 and 2525: open,
//! refused, filtered, speaks the other TLS mode, certificate valid for the name, AUTH
//! mechanisms offered. Each probe is an ordinary credential-free [`crate::check`], so the
//! greeting grace and Happy Eyeballs apply to every row.

pub mod address;
pub(crate) mod autoconfig;
pub(crate) mod dns;
pub mod providers;

use crate::diagnosis::providers::{mode_label, UsernameForm};
use crate::failure::{ConnectErrorKind, Failure, TlsFailureKind};
use crate::probe::Config;
use crate::report::Report;
use crate::tls_mode::TlsMode;
use crate::transport::IpVersion;
use address::Address;
use dns::{Dns, DnsError, MxAnswer};
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The ports every candidate host is probed on, with the mode each one means
/// (RFC 8314 §3.3: 465 implicit TLS; RFC 6409 §3.1: 587 STARTTLS; 25 and the common
/// alternative 2525 with STARTTLS when offered).
pub const STANDARD_PORTS: &[(u16, TlsMode)] = &[
    (465, TlsMode::Implicit),
    (587, TlsMode::Starttls),
    (25, TlsMode::Starttls),
    (2525, TlsMode::Starttls),
];

/// How discovery runs.
#[derive(Clone)]
#[non_exhaustive]
pub struct Options {
    /// `--dns-server IP:PORT` (a testing aid); `None`: the system resolver.
    pub dns_server: Option<SocketAddr>,
    /// Extra trust anchors (`--ca-file`), for SMTP and for the autoconfig HTTPS fetch.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Deadline for each network wait of each probe.
    pub timeout: Duration,
    /// Probes running at once.
    pub concurrency: usize,
    /// Testing aid: connect to port `to` whenever a candidate says port `from`.
    pub port_map: Vec<(u16, u16)>,
    /// The HTTPS port of the autoconfig fetch (443; a testing aid moves it).
    pub https_port: u16,
    /// Address families.
    pub ip: IpVersion,
    /// Run on each probe's configuration before it connects (`smtprobe web` vets the
    /// resolved address and pins `connect_to`); an `Err` is the row's detail, unprobed.
    pub vet: Option<Vet>,
    /// `Some(why)`: the autoconfig HTTPS fetch is skipped, and the source says why.
    pub skip_autoconfig: Option<String>,
}

/// See [`Options::vet`].
pub type Vet = Arc<
    dyn Fn(
            Config,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Config, VetError>> + Send>>
        + Send
        + Sync,
>;

/// Why a [`Vet`] refused a probe: the caller's own error (its `Display` is the row's
/// detail), boxed because the library does not know the caller's types.
pub type VetError = Box<dyn std::error::Error + Send + Sync>;

/// Why discovery could not run at all (each source's own failures are lines of the
/// report, not errors).
#[derive(Debug)]
#[non_exhaustive]
pub enum DiscoverError {
    /// The DNS resolver could not be set up.
    Resolver(dns::SystemConfError),
}

impl std::fmt::Display for DiscoverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiscoverError::Resolver(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DiscoverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DiscoverError::Resolver(e) => Some(e),
        }
    }
}

impl From<dns::SystemConfError> for DiscoverError {
    fn from(e: dns::SystemConfError) -> Self {
        DiscoverError::Resolver(e)
    }
}

impl Options {
    /// Defaults: system resolver, 5 s per wait, 8 probes at once.
    pub fn new() -> Options {
        Options {
            dns_server: None,
            extra_roots: Vec::new(),
            timeout: Duration::from_secs(5),
            concurrency: 8,
            port_map: Vec::new(),
            https_port: 443,
            ip: IpVersion::Any,
            vet: None,
            skip_autoconfig: None,
        }
    }

    /// The port actually connected to for a candidate's port.
    pub fn mapped(&self, port: u16) -> u16 {
        self.port_map
            .iter()
            .find(|(from, _)| *from == port)
            .map(|(_, to)| *to)
            .unwrap_or(port)
    }
}

impl Default for Options {
    fn default() -> Self {
        Options::new()
    }
}

/// Which source a candidate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Source {
    /// The bundled provider table, by the address's domain.
    ProviderTable,
    /// MX records mapped to a provider.
    Mx,
    /// RFC 6186 / RFC 8314 SRV records.
    Srv,
    /// The Mozilla autoconfig file.
    Autoconfig,
    /// `smtp.DOMAIN`, `mail.DOMAIN`.
    Guess,
}

impl Source {
    fn label(self) -> &'static str {
        match self {
            Source::ProviderTable => "provider table",
            Source::Mx => "MX records",
            Source::Srv => "SRV records",
            Source::Autoconfig => "autoconfig",
            Source::Guess => "guesses",
        }
    }
}

/// What one source said.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct SourceReport {
    /// The source.
    pub source: Source,
    /// What it said, one line each.
    pub said: Vec<String>,
}

/// A host, port and mode to probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Candidate {
    /// The host name (certificates are verified against it).
    pub host: String,
    /// The port as documented (before any test port mapping).
    pub port: u16,
    /// The TLS mode the port is expected to speak.
    pub mode: TlsMode,
    /// Where it came from.
    pub source: Source,
    /// The user name the source documents, if any.
    pub username: Option<String>,
}

/// What a credential-free probe of one candidate found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum PortStatus {
    /// Greeting, EHLO and TLS as expected.
    Open,
    /// Connection refused.
    Refused,
    /// No answer: a firewall drops the packets.
    Filtered,
    /// No route.
    Unreachable,
    /// The port speaks the other TLS mode.
    OtherMode,
    /// TLS works but the certificate does not verify.
    BadCertificate,
    /// The host name has no address.
    NoAddress,
    /// Something else failed (the detail says what).
    Failed,
}

/// One probed candidate.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ProbeRow {
    /// The candidate.
    pub candidate: Candidate,
    /// The verdict.
    pub status: PortStatus,
    /// One line for people.
    pub detail: String,
    /// The diagnosis code of the probe (`None`: the candidate was not probed).
    pub code: Option<crate::diagnosis::Code>,
    /// `Some(true)`: the certificate verified for the host name.
    pub certificate_valid: Option<bool>,
    /// The SASL mechanisms offered after TLS.
    pub auth: Vec<String>,
    /// Milliseconds the probe took.
    pub ms: u64,
}

/// The whole discovery.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Discovery {
    /// The address.
    pub address: Address,
    /// Where DNS answers came from.
    pub resolver: String,
    /// Each source and what it said.
    pub sources: Vec<SourceReport>,
    /// Every probe, in candidate order.
    pub probes: Vec<ProbeRow>,
    /// Index into `probes` of the best working candidate.
    pub best: Option<usize>,
    /// Explanations (hosting blocks, DNS problems).
    pub notes: Vec<String>,
    /// The user name to use with the best candidate.
    pub username: Option<String>,
    /// Milliseconds the whole discovery took.
    pub ms: u64,
}

impl Discovery {
    /// The best working candidate.
    pub fn best(&self) -> Option<&ProbeRow> {
        self.best.map(|i| &self.probes[i])
    }
}

/// Runs discovery for `address` (already parsed).
pub async fn discover(address: Address, opts: &Options) -> Result<Discovery, DiscoverError> {
    let started = Instant::now();
    let dns = Dns::new(opts.dns_server, opts.timeout)?;
    let mut found = Found {
        domain: address.domain.clone(),
        user_address: address.ascii(),
        sources: Vec::new(),
        notes: Vec::new(),
        cands: Vec::new(),
        username: None,
    };
    found.provider_table();
    if found.mx(&dns).await == DomainExists::No {
        let domain = &found.domain;
        found.notes.push(format!(
            "The domain {domain} does not exist in DNS: check the spelling of the address."
        ));
        return Ok(finish(
            address,
            dns.source,
            found.sources,
            Vec::new(),
            found.notes,
            None,
            started,
        ));
    }
    found.srv(&dns).await;
    found.autoconfig(&dns, opts).await;
    found.guesses(&dns).await;

    // Every candidate host on the standard ports too.
    let Found {
        user_address,
        sources,
        mut notes,
        mut cands,
        mut username,
        ..
    } = found;
    let hosts: Vec<(String, Source, Option<String>)> = cands
        .iter()
        .map(|c| (c.host.clone(), c.source, c.username.clone()))
        .collect();
    for (host, source, user) in hosts {
        add_standard_ports(&mut cands, &host, source, &user);
    }

    let probes = probe_all(&cands, opts).await;
    notes.extend(hosting_block_notes(&probes));
    let best = pick_best(&probes);
    if let Some(b) = best.and_then(|i| probes[i].candidate.username.clone()) {
        username = Some(b);
    }
    if username.is_none() && best.is_some() {
        username = Some(user_address);
    }
    Ok(finish(
        address, dns.source, sources, probes, notes, username, started,
    ))
}

/// Whether the MX lookup found the domain (NXDOMAIN ends discovery early).
#[derive(PartialEq, Eq)]
enum DomainExists {
    Yes,
    No,
}

/// What the sources said so far, in the order they are asked.
struct Found {
    /// The address's domain (ASCII).
    domain: String,
    /// The address with the ASCII domain.
    user_address: String,
    sources: Vec<SourceReport>,
    notes: Vec<String>,
    cands: Vec<Candidate>,
    /// The user name the first source that documents one gives.
    username: Option<String>,
}

impl Found {
    fn said(&mut self, source: Source, said: Vec<String>) {
        self.sources.push(SourceReport { source, said });
    }

    /// 1. The bundled provider table, by the address's domain.
    fn provider_table(&mut self) {
        let domain = &self.domain;
        let said = match providers::by_email_domain(domain) {
            Some(p) => {
                self.username = provider_username(p, &self.user_address);
                add_provider(&mut self.cands, p, Source::ProviderTable, &self.username);
                vec![format!(
                    "{domain} is {}: {}",
                    p.display_name,
                    p.settings_line()
                )]
            }
            None => vec![format!("no entry for {domain}")],
        };
        self.said(Source::ProviderTable, said);
    }

    /// 2. MX records: a null MX, CNAME targets (RFC 2181 §10.3), a known provider.
    async fn mx(&mut self, dns: &Dns) -> DomainExists {
        let domain = self.domain.clone();
        let mut said = Vec::new();
        let mut exists = DomainExists::Yes;
        match dns.mx(&domain).await {
            Ok(MxAnswer::NullMx) => {
                said.push(format!(
                    "{domain} has a null MX (RFC 7505): this domain accepts no mail"
                ));
                self.notes.push(format!(
                    "{domain} publishes a null MX (RFC 7505): it accepts no mail, so addresses at {domain} receive nothing. Sending may still be set up elsewhere; the other sources were asked."
                ));
            }
            Ok(MxAnswer::Hosts { hosts }) => self.mx_hosts(dns, &hosts, &mut said).await,
            Err(DnsError::NoSuchDomain) => {
                exists = DomainExists::No;
                said.push(format!("{domain} does not exist (NXDOMAIN)"));
            }
            Err(DnsError::NoRecords) => said.push(format!("{domain} has no MX records")),
            Err(e @ DnsError::LookupFailed { .. }) => said.push(format!("MX lookup: {e}")),
        }
        self.said(Source::Mx, said);
        exists
    }

    async fn mx_hosts(&mut self, dns: &Dns, hosts: &[(u16, String)], said: &mut Vec<String>) {
        let domain = &self.domain;
        let list: Vec<String> = hosts.iter().map(|(p, h)| format!("{h} ({p})")).collect();
        said.push(format!("MX {}", list.join(", ")));
        for (_, h) in hosts.iter().take(3) {
            if let Some(target) = dns.cname_of(h).await {
                said.push(format!(
                    "the MX host {h} is an alias (CNAME) of {target}: RFC 2181 §10.3 forbids this, and some senders refuse such an MX"
                ));
                self.notes.push(format!(
                    "The MX record of {domain} names {h}, which is a CNAME for {target}. Point the MX at {target} directly (RFC 2181 §10.3, RFC 5321 §5.1)."
                ));
            }
        }
        match hosts
            .iter()
            .find_map(|(_, h)| providers::by_mx_host(h).map(|p| (h, p)))
        {
            Some((h, p)) => {
                said.push(format!(
                    "{h} belongs to {}: {}",
                    p.display_name,
                    p.settings_line()
                ));
                if self.username.is_none() {
                    self.username = provider_username(p, &self.user_address);
                }
                add_provider(&mut self.cands, p, Source::Mx, &self.username);
            }
            None => said.push("no known provider runs these mail exchangers".into()),
        }
    }

    /// 3. SRV records (RFC 6186 §3.1, RFC 8314 §5.1).
    async fn srv(&mut self, dns: &Dns) {
        let mut said = Vec::new();
        for (label, mode) in [
            ("_submissions._tcp", TlsMode::Implicit),
            ("_submission._tcp", TlsMode::Starttls),
        ] {
            let name = format!("{label}.{}", self.domain);
            match dns.srv(&name).await {
                Ok(targets) => {
                    for t in targets {
                        said.push(format!(
                            "{name}: {}:{} (priority {}, {})",
                            t.host,
                            t.port,
                            t.priority,
                            mode_label(mode)
                        ));
                        push_unique(
                            &mut self.cands,
                            Candidate {
                                host: t.host,
                                port: t.port,
                                mode,
                                source: Source::Srv,
                                username: None,
                            },
                        );
                    }
                }
                Err(DnsError::NoSuchDomain | DnsError::NoRecords) => {
                    said.push(format!("{name}: none"))
                }
                Err(e) => said.push(format!("{name}: {e}")),
            }
        }
        self.said(Source::Srv, said);
    }

    /// 4. The autoconfig file over verified HTTPS.
    async fn autoconfig(&mut self, dns: &Dns, opts: &Options) {
        let https = autoconfig::Https {
            dns: dns.clone(),
            roots: Arc::new(crate::transport::root_store(&opts.extra_roots)),
            timeout: opts.timeout,
            port: opts.https_port,
        };
        let mut said = Vec::new();
        let fetched = match &opts.skip_autoconfig {
            Some(why) => {
                said.push(format!("skipped: {why}"));
                Vec::new()
            }
            None => autoconfig::fetch(&https, &self.domain, &self.user_address).await,
        };
        for f in fetched {
            let servers = match f.result {
                Ok(servers) => servers,
                Err(why) => {
                    said.push(format!("{}: {why}", f.url));
                    continue;
                }
            };
            for s in servers {
                said.push(format!(
                    "{}: {}:{} ({})",
                    f.url,
                    s.host,
                    s.port,
                    mode_label(s.mode)
                ));
                if self.username.is_none() {
                    self.username = s.username.clone();
                }
                push_unique(
                    &mut self.cands,
                    Candidate {
                        host: s.host,
                        port: s.port,
                        mode: s.mode,
                        source: Source::Autoconfig,
                        username: s.username,
                    },
                );
            }
        }
        self.said(Source::Autoconfig, said);
    }

    /// 5. Guesses (`smtp.DOMAIN`, `mail.DOMAIN`), only when nothing above named a server.
    async fn guesses(&mut self, dns: &Dns) {
        if !self.cands.is_empty() {
            let said = vec!["not needed: the sources above named a server".into()];
            return self.said(Source::Guess, said);
        }
        let mut said = Vec::new();
        for prefix in ["smtp", "mail"] {
            let host = format!("{prefix}.{}", self.domain);
            match dns.addrs(&host).await {
                Ok(ips) => {
                    let list: Vec<String> = ips.iter().map(|i| i.to_string()).collect();
                    said.push(format!("{host} exists ({})", list.join(", ")));
                    add_standard_ports(&mut self.cands, &host, Source::Guess, &None);
                }
                Err(e) => said.push(format!("{host}: {e}")),
            }
        }
        self.said(Source::Guess, said);
    }
}

#[allow(clippy::too_many_arguments)]
fn finish(
    address: Address,
    resolver: String,
    sources: Vec<SourceReport>,
    probes: Vec<ProbeRow>,
    notes: Vec<String>,
    username: Option<String>,
    started: Instant,
) -> Discovery {
    let best = pick_best(&probes);
    Discovery {
        address,
        resolver,
        sources,
        probes,
        best,
        notes,
        username: best.and(username),
        ms: started.elapsed().as_millis() as u64,
    }
}

fn provider_username(p: &providers::Provider, address: &str) -> Option<String> {
    match (p.username.form, &p.username.value) {
        (UsernameForm::FullAddress, _) => Some(address.to_owned()),
        (UsernameForm::Literal, Some(v)) => Some(v.clone()),
        _ => None,
    }
}

fn add_provider(
    cands: &mut Vec<Candidate>,
    p: &providers::Provider,
    source: Source,
    username: &Option<String>,
) {
    for setting in p.submission() {
        push_unique(
            cands,
            Candidate {
                host: setting.host.clone(),
                port: setting.port,
                mode: setting.mode,
                source,
                username: username.clone(),
            },
        );
    }
}

/// `host` on each of [`STANDARD_PORTS`] (pairs already listed are kept as they are).
fn add_standard_ports(
    cands: &mut Vec<Candidate>,
    host: &str,
    source: Source,
    username: &Option<String>,
) {
    for &(port, mode) in STANDARD_PORTS {
        push_unique(
            cands,
            Candidate {
                host: host.to_owned(),
                port,
                mode,
                source,
                username: username.clone(),
            },
        );
    }
}

fn push_unique(cands: &mut Vec<Candidate>, c: Candidate) {
    if !cands.iter().any(|x| x.host == c.host && x.port == c.port) {
        cands.push(c);
    }
}

/// Probes every candidate credential-free, `opts.concurrency` at once.
async fn probe_all(cands: &[Candidate], opts: &Options) -> Vec<ProbeRow> {
    let permits = Arc::new(tokio::sync::Semaphore::new(opts.concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, c) in cands.iter().enumerate() {
        let config = probe_config(c, opts);
        let c = c.clone();
        let permits = permits.clone();
        let vet = opts.vet.clone();
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let start = Instant::now();
            let vetted = match vet {
                Some(vet) => vet(config).await,
                None => Ok(config),
            };
            let checked = match vetted {
                Ok(config) => crate::check(config).await.map_err(|e| e.to_string()),
                Err(why) => Err(why.to_string()),
            };
            let row = match checked {
                Ok(report) => classify(c, &report, start.elapsed()),
                Err(detail) => ProbeRow {
                    candidate: c,
                    status: PortStatus::Failed,
                    detail,
                    code: None,
                    certificate_valid: None,
                    auth: Vec::new(),
                    ms: start.elapsed().as_millis() as u64,
                },
            };
            (i, row)
        });
    }
    let mut rows: Vec<Option<ProbeRow>> = vec![None; cands.len()];
    while let Some(done) = set.join_next().await {
        if let Ok((i, row)) = done {
            rows[i] = Some(row);
        }
    }
    rows.into_iter().flatten().collect()
}

/// The credential-free check for one candidate.
pub fn probe_config(c: &Candidate, opts: &Options) -> Config {
    let mut config = Config::new(c.host.clone());
    config.port = Some(opts.mapped(c.port));
    // The expected mode, explicitly: a port that speaks the other one is diagnosed
    // (tls.starttls-on-implicit-port / tls.implicit-on-starttls-port), not switched.
    config.tls = c.mode.into();
    config.timeout = opts.timeout;
    config.extra_roots = opts.extra_roots.clone();
    config.dns_server = opts.dns_server;
    config.ip = opts.ip;
    config
}

fn other(mode: TlsMode) -> &'static str {
    match mode {
        TlsMode::Implicit => "STARTTLS",
        _ => "implicit TLS",
    }
}

/// Turns a probe's report into a row, from the typed failure (never from text).
fn classify(c: Candidate, report: &Report, took: Duration) -> ProbeRow {
    let auth: Vec<String> = report
        .capabilities
        .iter()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words
                .next()
                .filter(|k| k.eq_ignore_ascii_case("AUTH"))
                .map(|_| words.map(str::to_owned).collect::<Vec<_>>())
        })
        .next_back()
        .unwrap_or_default();
    let cert_ok = report.tls.as_ref().map(|t| t.verified);
    let (status, detail, certificate_valid) = match &report.failure {
        None => {
            let tls = match cert_ok {
                Some(true) => format!("certificate valid for {}", c.host),
                _ => "no TLS".to_owned(),
            };
            let mechs = if auth.is_empty() {
                "no AUTH offered".to_owned()
            } else {
                format!("AUTH {}", auth.join(" "))
            };
            (PortStatus::Open, format!("open, {tls}, {mechs}"), cert_ok)
        }
        Some(Failure::Dns { detail, .. }) => (PortStatus::NoAddress, detail.clone(), None),
        Some(Failure::Connect { attempts }) => {
            let kinds: Vec<_> = attempts.iter().filter_map(|a| a.error).collect();
            if kinds.contains(&ConnectErrorKind::Timeout) {
                (
                    PortStatus::Filtered,
                    "filtered: no answer (a firewall drops the packets)".into(),
                    None,
                )
            } else if kinds.contains(&ConnectErrorKind::Refused) {
                (
                    PortStatus::Refused,
                    "refused: nothing listens there".into(),
                    None,
                )
            } else if kinds.contains(&ConnectErrorKind::Unreachable) {
                (
                    PortStatus::Unreachable,
                    "unreachable: no route".into(),
                    None,
                )
            } else {
                (PortStatus::Failed, report.diagnosis.summary.clone(), None)
            }
        }
        Some(Failure::TlsExpectedByServer) => (
            PortStatus::OtherMode,
            format!("speaks implicit TLS, not {}", mode_label(c.mode)),
            None,
        ),
        Some(Failure::Tls(t)) => match &t.kind {
            TlsFailureKind::ClearTextReply { .. } if !t.after_starttls => (
                PortStatus::OtherMode,
                format!(
                    "speaks {}, not implicit TLS (it greeted in clear text)",
                    other(c.mode)
                ),
                None,
            ),
            TlsFailureKind::UntrustedIssuer
            | TlsFailureKind::Expired
            | TlsFailureKind::NotYetValid
            | TlsFailureKind::NameMismatch
            | TlsFailureKind::BadCertificate { .. } => (
                PortStatus::BadCertificate,
                format!("TLS works, but {}", report.diagnosis.summary),
                Some(false),
            ),
            _ => (PortStatus::Failed, report.diagnosis.summary.clone(), None),
        },
        Some(_) => (
            PortStatus::Failed,
            report.diagnosis.summary.clone(),
            cert_ok,
        ),
    };
    ProbeRow {
        candidate: c,
        status,
        detail,
        code: Some(report.diagnosis.code),
        certificate_valid,
        auth,
        ms: took.as_millis() as u64,
    }
}

/// The first open candidate with TLS and AUTH, in source order; else the first open one
/// with TLS.
fn pick_best(rows: &[ProbeRow]) -> Option<usize> {
    let open = |r: &ProbeRow| r.status == PortStatus::Open && r.candidate.mode != TlsMode::None;
    rows.iter()
        .position(|r| open(r) && !r.auth.is_empty())
        .or_else(|| rows.iter().position(open))
}

/// A port that gets no answer while another port of the same host answers: the network
/// on the way (usually the user's hosting or cloud provider) blocks it.
fn hosting_block_notes(rows: &[ProbeRow]) -> Vec<String> {
    let answered = |r: &ProbeRow| {
        !matches!(
            r.status,
            PortStatus::Filtered | PortStatus::Unreachable | PortStatus::NoAddress
        )
    };
    let mut notes = Vec::new();
    let mut seen_hosts: Vec<&str> = Vec::new();
    for r in rows {
        let host = r.candidate.host.as_str();
        if seen_hosts.contains(&host) {
            continue;
        }
        seen_hosts.push(host);
        let same: Vec<&ProbeRow> = rows.iter().filter(|x| x.candidate.host == host).collect();
        let filtered: Vec<String> = same
            .iter()
            .filter(|x| x.status == PortStatus::Filtered)
            .map(|x| x.candidate.port.to_string())
            .collect();
        let open: Vec<String> = same
            .iter()
            .filter(|x| answered(x))
            .map(|x| x.candidate.port.to_string())
            .collect();
        if !filtered.is_empty() && !open.is_empty() {
            notes.push(format!(
                "{host}: port {} gets no answer while port {} answers: something between this machine and {host} drops it. Many cloud and hosting providers block outgoing port 25, and some block 465 and 587 too, to stop spam. Use a port that answers, or ask your hosting provider to unblock the port (some do on request).",
                filtered.join(", "),
                open.join(", ")
            ));
        }
    }
    notes
}

impl Discovery {
    /// Renders the discovery for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let a = &self.address;
        let _ = writeln!(out, "smtprobe discover {}", a.input);
        match &a.domain_unicode {
            Some(u) => {
                let _ = writeln!(out, "  domain    {u} (IDNA: {})", a.domain);
            }
            None => {
                let _ = writeln!(out, "  domain    {}", a.domain);
            }
        }
        let _ = writeln!(out, "  DNS       {}", self.resolver);
        let _ = writeln!(out, "\nSources");
        for s in &self.sources {
            for (i, line) in s.said.iter().enumerate() {
                let label = if i == 0 { s.source.label() } else { "" };
                let _ = writeln!(out, "  {label:<15} {line}");
            }
        }
        if !self.probes.is_empty() {
            let _ = writeln!(out, "\nCandidates (probed without credentials)");
            let w = self
                .probes
                .iter()
                .map(|r| r.candidate.host.len())
                .max()
                .unwrap_or(0);
            for r in &self.probes {
                let mark = if r.status == PortStatus::Open {
                    "✓"
                } else {
                    "✗"
                };
                let _ = writeln!(
                    out,
                    "  {mark} {:<w$}  {:>5}  {:<9}  {}  ({} ms)",
                    r.candidate.host,
                    r.candidate.port,
                    r.candidate.mode.as_str(),
                    r.detail,
                    r.ms
                );
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\nNotes");
            for n in &self.notes {
                let _ = writeln!(out, "  - {n}");
            }
        }
        match self.best() {
            Some(b) => {
                let _ = writeln!(out, "\nSettings found (not yet tested with a login)");
                let _ = writeln!(out, "  server     {}", b.candidate.host);
                let _ = writeln!(out, "  port       {}", b.candidate.port);
                let _ = writeln!(out, "  security   {}", mode_label(b.candidate.mode));
                if let Some(u) = &self.username {
                    let _ = writeln!(out, "  user name  {u}");
                }
                if !b.auth.is_empty() {
                    let _ = writeln!(out, "  AUTH       {}", b.auth.join(" "));
                }
                let _ = writeln!(
                    out,
                    "\nProve it with one login: smtprobe check {}",
                    a.ascii()
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "\nCould not find working SMTP settings for {}. Tried: {}.",
                    a.domain,
                    self.tried()
                );
            }
        }
        let _ = writeln!(out, "\n(discovery took {} ms)", self.ms);
        out
    }

    /// The sources tried and what each said, in one line.
    pub fn tried(&self) -> String {
        self.sources
            .iter()
            .map(|s| format!("{} ({})", s.source.label(), s.said.join("; ")))
            .collect::<Vec<_>>()
            .join("; ")
    }
}
