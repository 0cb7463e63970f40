//! What went wrong, as typed evidence.
//!
//! Each layer reports its failure here with the evidence it had (the reply, the rustls
//! error kind, the bytes that arrived, per-address connect errors). Turning a `Failure`
//! into a diagnosis code happens in exactly one place: [`crate::diagnosis::diagnose`].

use crate::protocol::{Reply, ReplyError};
use crate::stage::Stage;
use serde::Serialize;
use std::net::SocketAddr;

/// Why name resolution failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DnsErrorKind {
    /// The name does not exist (NXDOMAIN / EAI_NONAME), or has no address records.
    NoSuchHost,
    /// The resolver could not answer (no network, SERVFAIL, timeout).
    LookupFailed,
}

/// Why one TCP connect attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ConnectErrorKind {
    /// RST: nothing listens there, or a firewall rejects.
    Refused,
    /// No answer before the deadline: usually a firewall that drops.
    Timeout,
    /// No route (e.g. no IPv6 connectivity).
    Unreachable,
    /// Anything else (the detail says what).
    Other,
}

/// One connect attempt to one resolved address.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ConnectAttempt {
    /// The address tried.
    pub addr: SocketAddr,
    /// `None` when it connected.
    pub error: Option<ConnectErrorKind>,
    /// The OS error text, for the evidence line.
    pub detail: String,
    /// How long the attempt took.
    pub ms: f64,
}

/// The parts of a certificate a person needs to see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[non_exhaustive]
pub struct CertSummary {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// DNS names and IP addresses from subjectAltName.
    pub sans: Vec<String>,
    /// notBefore, RFC 3339.
    pub not_before: String,
    /// notAfter, RFC 3339.
    pub not_after: String,
}

/// Why a TLS handshake failed, from the typed rustls error (never from message text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
#[non_exhaustive]
pub enum TlsFailureKind {
    /// The server answered the ClientHello with clear text (e.g. `220 …`): it speaks
    /// STARTTLS or plain SMTP on this port.
    ClearTextReply {
        /// The first line it sent, escaped.
        first_line: String,
    },
    /// The certificate chain does not lead to a trusted root.
    UntrustedIssuer,
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet.
    NotYetValid,
    /// The certificate does not name the host we asked for.
    NameMismatch,
    /// Another certificate problem (revoked, bad signature, unsupported).
    BadCertificate {
        /// What rustls said.
        detail: String,
    },
    /// The handshake failed for another reason (alert, protocol version, no shared cipher).
    Handshake {
        /// What rustls said.
        detail: String,
    },
    /// The server accepted the connection, then closed it during the handshake.
    ClosedDuringHandshake,
    /// The server wants a client certificate and none was presented: it sent the TLS
    /// alert `certificate_required` (RFC 8446 §6.2), during the handshake or, in TLS 1.3,
    /// on the first read after it (the client's side of the handshake ends first).
    ClientCertificateRequired,
    /// The server negotiates only a TLS version older than 1.2 (RFC 8996).
    VersionTooOld {
        /// The version its ServerHello named (`TLS 1.0`), when it sent one; `None` when it
        /// answered with a `protocol_version` alert instead.
        offered: Option<String>,
    },
    /// The server answered the ClientHello with another fatal TLS alert (RFC 8446 §6):
    /// it speaks TLS here and refused, so waiting longer changes nothing.
    Alert {
        /// The alert's name as rustls spells it (`HandshakeFailure`).
        alert: String,
    },
}

/// A failed TLS handshake, with the certificate the server presented when there was one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TlsFailure {
    /// What went wrong.
    pub kind: TlsFailureKind,
    /// The server's leaf certificate, when it got that far.
    pub certificate: Option<CertSummary>,
    /// True when this was the handshake after STARTTLS (false: implicit TLS).
    pub after_starttls: bool,
}

/// Everything that can end a check early. Each variant carries its evidence.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Failure {
    /// Name resolution failed.
    Dns {
        /// What failed.
        kind: DnsErrorKind,
        /// The resolver's message.
        detail: String,
    },
    /// Every resolved address failed to connect.
    Connect {
        /// One entry per address tried, in order.
        attempts: Vec<ConnectAttempt>,
    },
    /// The TLS handshake failed.
    Tls(TlsFailure),
    /// Plain/STARTTLS client waited for a greeting that never came, and a second,
    /// credential-free connection found the port speaks TLS from the first byte.
    TlsExpectedByServer,
    /// No reply within the deadline at this stage.
    Timeout {
        /// Where it waited.
        stage: Stage,
    },
    /// The server closed the connection.
    Closed {
        /// Where it happened.
        stage: Stage,
        /// A partial line that had arrived before the close, escaped.
        partial: Option<String>,
    },
    /// The server's bytes are not a valid SMTP reply.
    Malformed {
        /// Where it happened.
        stage: Stage,
        /// What the parser found.
        error: ReplyError,
    },
    /// A reply that ends the check: negative, or not what the protocol allows here.
    Reply {
        /// The stage whose command it answered.
        stage: Stage,
        /// The reply.
        reply: Reply,
    },
    /// The server did not announce STARTTLS, so credentials cannot be protected.
    StartTlsNotOffered,
    /// Bytes arrived after the 220 to STARTTLS, before the handshake (RFC 3207 §5).
    StartTlsInjection {
        /// The injected bytes, escaped.
        bytes: String,
    },
    /// The server did not announce AUTH (after TLS, where TLS is used).
    AuthNotOffered {
        /// True when AUTH is missing on an encrypted session.
        tls: bool,
        /// True when the unencrypted session offered STARTTLS: AUTH would likely appear
        /// after it (RFC 3207 §4.2 lets servers announce AUTH only over TLS).
        starttls_offered: bool,
    },
    /// No mechanism both sides support (or the one forced with `--auth` is not offered).
    MechanismUnsupported {
        /// What the user asked for, if anything.
        wanted: Option<String>,
        /// What the server offered.
        offered: Vec<String>,
    },
    /// `--user` given on a connection without TLS, and `--allow-plaintext-auth` not set.
    PlaintextAuthRefused,
    /// The server's AUTH exchange broke the protocol (success before credentials, a
    /// third LOGIN prompt, an unexpected challenge…).
    AuthProtocol {
        /// The reply that broke it.
        reply: Reply,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// An OAuth bearer token was refused: the server's error challenge (decoded JSON for
    /// Google's XOAUTH2) and the final failure reply.
    OAuthRejected {
        /// The decoded challenge, escaped (`{"status":"400",...}`).
        challenge: String,
        /// The final reply after the client's empty response.
        reply: Reply,
    },
    /// The server sent a second reply that no command asked for, or bytes when it had
    /// nothing to say (e.g. before the greeting's reply was consumed).
    Unsolicited {
        /// Where it happened.
        stage: Stage,
        /// The bytes, escaped.
        bytes: String,
    },
    /// SCRAM (RFC 5802 §3): the server did not prove it knows the password: its
    /// signature does not verify, or it claimed success without sending one.
    ScramServerUnverified {
        /// What was wrong (a mismatch, or no `v=` at all).
        error: crate::protocol::sasl::ScramError,
        /// The reply that carried (or lacked) the server signature.
        reply: Reply,
    },
    /// EHLO was refused (500/502) and HELO accepted: the server does not speak ESMTP
    /// (RFC 5321 §4.1.1.1), so STARTTLS, AUTH or the needed extension cannot be used.
    NotEsmtp {
        /// What could not be done without ESMTP.
        needed: &'static str,
    },
    /// The message is larger than the SIZE the server announced (RFC 1870 §4): not sent.
    MessageTooLarge {
        /// The message size in bytes, as it would go on the wire.
        size: u64,
        /// The server's announced limit.
        limit: u64,
    },
    /// The message needs an extension the server did not announce: SMTPUTF8 for
    /// non-ASCII addresses (RFC 6531 §3.4), 8BITMIME for an 8-bit body (RFC 6152 §3).
    ExtensionNotOffered {
        /// The EHLO keyword that is missing.
        extension: &'static str,
        /// Why the message needs it.
        why: &'static str,
    },
    /// The proxy (SOCKS5, RFC 1928; HTTP CONNECT, RFC 9110 §9.3.6) failed.
    Proxy(crate::proxy::ProxyFailure),
}

/// A TLS layer failure is a check's failure as it is: the handshake, certificate or
/// alert evidence moves up unchanged.
impl From<TlsFailure> for Failure {
    fn from(f: TlsFailure) -> Self {
        Failure::Tls(f)
    }
}

/// A proxy failure (RFC 1928 reply, HTTP CONNECT status) is the check's failure at the
/// proxy stage.
impl From<crate::proxy::ProxyFailure> for Failure {
    fn from(f: crate::proxy::ProxyFailure) -> Self {
        Failure::Proxy(f)
    }
}

impl Failure {
    /// The stage the failure belongs to.
    pub fn stage(&self) -> Stage {
        match self {
            Failure::Dns { .. } => Stage::Dns,
            Failure::Connect { .. } => Stage::Connect,
            Failure::Tls(_) | Failure::TlsExpectedByServer => Stage::Tls,
            Failure::Timeout { stage }
            | Failure::Closed { stage, .. }
            | Failure::Malformed { stage, .. }
            | Failure::Reply { stage, .. }
            | Failure::Unsolicited { stage, .. } => *stage,
            Failure::StartTlsNotOffered | Failure::StartTlsInjection { .. } => Stage::Starttls,
            Failure::AuthNotOffered { .. }
            | Failure::MechanismUnsupported { .. }
            | Failure::PlaintextAuthRefused
            | Failure::AuthProtocol { .. }
            | Failure::OAuthRejected { .. }
            | Failure::ScramServerUnverified { .. } => Stage::Auth,
            Failure::NotEsmtp { .. } => Stage::Ehlo,
            Failure::MessageTooLarge { .. } | Failure::ExtensionNotOffered { .. } => Stage::Mail,
            Failure::Proxy(_) => Stage::Proxy,
        }
    }

    /// The reply that caused the failure, if one did.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Failure::Reply { reply, .. }
            | Failure::AuthProtocol { reply, .. }
            | Failure::OAuthRejected { reply, .. }
            | Failure::ScramServerUnverified { reply, .. } => Some(reply),
            _ => None,
        }
    }
}
