//! A throw-away test PKI: a CA and server certificates signed by it, generated at run
//! time with rcgen, for the replay server, `smtprobe demo` and tests.
//!
//! Besides the valid server certificate it can make the broken ones smtprobe must
//! diagnose: expired, issued for other names, self-signed (not from the CA), so each
//! certificate diagnosis is tested against a real rustls handshake, not a mock.

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::fmt;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// Which server certificate to present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerCert {
    /// Signed by the CA, valid now, for the requested names.
    #[default]
    Valid,
    /// Signed by the CA for the requested names, but expired (notAfter in the past).
    Expired,
    /// Signed by the CA and valid, but only for `other.invalid` (name mismatch).
    WrongName,
    /// Valid for the requested names, but self-signed: no chain to the CA (untrusted).
    SelfSigned,
}

/// Why certificate generation or TLS configuration failed.
#[derive(Debug)]
pub struct CertError(String);

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "test certificate: {}", self.0)
    }
}

impl std::error::Error for CertError {}

impl From<rcgen::Error> for CertError {
    fn from(e: rcgen::Error) -> Self {
        CertError(e.to_string())
    }
}

impl From<rustls::Error> for CertError {
    fn from(e: rustls::Error) -> Self {
        CertError(e.to_string())
    }
}

/// A CA and a server certificate signed by it.
pub struct TestPki {
    names: Vec<String>,
    ca: Certificate,
    ca_key: KeyPair,
    server_chain: Vec<CertificateDer<'static>>,
    server_key_der: Vec<u8>,
    server_config: Arc<ServerConfig>,
    /// The CA exactly as stored (`load_or_create`): the PEM the client trusts.
    ca_pem_override: Option<String>,
}

impl fmt::Debug for TestPki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The private keys stay out of debug output.
        f.debug_struct("TestPki")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

/// The rustls crypto provider smtprobe uses everywhere (ring: no cmake needed).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TestPki {
    /// Generates a CA and a valid server certificate for `names` (DNS names, or IP
    /// addresses such as `127.0.0.1` and `::1`, which become IP subjectAltNames).
    pub fn generate(names: &[&str]) -> Result<TestPki, CertError> {
        if names.is_empty() {
            return Err(CertError("at least one name is needed".into()));
        }
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "smtprobe test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        ca_params.not_before = now - Duration::days(1);
        ca_params.not_after = now + Duration::days(3650);
        let ca = ca_params.self_signed(&ca_key)?;
        TestPki::issue(names, ca, ca_key, None)
    }

    /// A PKI around a CA: a valid server certificate for `names`, signed by it.
    fn issue(
        names: &[&str],
        ca: Certificate,
        ca_key: KeyPair,
        ca_pem_override: Option<String>,
    ) -> Result<TestPki, CertError> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        if names.is_empty() {
            return Err(CertError("at least one name is needed".into()));
        }
        let (server_chain, server_key_der) = make_server(&names, ServerCert::Valid, &ca, &ca_key)?;
        let server_config = build_server_config(server_chain.clone(), &server_key_der)?;
        Ok(TestPki {
            names,
            ca,
            ca_key,
            server_chain,
            server_key_der,
            server_config,
            ca_pem_override,
        })
    }

    /// Like [`TestPki::generate`], but the CA is kept in `dir` (`ca.pem`, and
    /// `ca-key.pem` created 0600): loaded when present, created otherwise. The server
    /// certificate is issued afresh for `names` by that CA, so a client that trusts
    /// `ca.pem` once keeps trusting every later run (a CI image can bake it in).
    pub fn load_or_create(dir: &std::path::Path, names: &[&str]) -> Result<TestPki, CertError> {
        let io = |what: &str, p: &std::path::Path, e: std::io::Error| {
            CertError(format!("{what} {}: {e}", p.display()))
        };
        let ca_path = dir.join("ca.pem");
        let key_path = dir.join("ca-key.pem");
        if !ca_path.exists() && !key_path.exists() {
            std::fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
            let fresh = TestPki::generate(names)?;
            write_private(&key_path, &fresh.ca_key.serialize_pem())
                .map_err(|e| io("cannot write", &key_path, e))?;
            std::fs::write(&ca_path, fresh.ca_pem())
                .map_err(|e| io("cannot write", &ca_path, e))?;
            return Ok(fresh);
        }
        let ca_pem =
            std::fs::read_to_string(&ca_path).map_err(|e| io("cannot read", &ca_path, e))?;
        let key_pem =
            std::fs::read_to_string(&key_path).map_err(|e| io("cannot read", &key_path, e))?;
        let ca_key = KeyPair::from_pem(&key_pem)
            .map_err(|e| CertError(format!("{}: not a private key: {e}", key_path.display())))?;
        let params = CertificateParams::from_ca_cert_pem(&ca_pem)
            .map_err(|e| CertError(format!("{}: not a CA certificate: {e}", ca_path.display())))?;
        // Re-signing the same parameters with the same key reproduces the CA's name and
        // key: certificates it issues chain to the `ca.pem` the client trusts.
        let ca = params.self_signed(&ca_key)?;
        TestPki::issue(names, ca, ca_key, Some(ca_pem))
    }

    /// The names the server certificate is valid for.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The CA certificate in PEM (what `--ca-out` writes and `--ca-file` reads).
    pub fn ca_pem(&self) -> String {
        self.ca_pem_override
            .clone()
            .unwrap_or_else(|| self.ca.pem())
    }

    /// The CA certificate in DER, for a rustls root store.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        if let Some(pem) = &self.ca_pem_override {
            if let Some(Ok(der)) = rustls_pemfile::certs(&mut pem.as_bytes()).next() {
                return der;
            }
        }
        self.ca.der().clone()
    }

    /// A root store holding only this CA.
    pub fn root_store(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        // Our own freshly generated CA always parses.
        let _ = roots.add(self.ca_der());
        roots
    }

    /// The valid server certificate chain (leaf, then CA).
    pub fn server_chain(&self) -> &[CertificateDer<'static>] {
        &self.server_chain
    }

    /// The valid server certificate's private key (PKCS#8 DER).
    pub fn server_key(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.server_key_der.clone()).into()
    }

    /// A rustls server configuration presenting the valid certificate.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server_config.clone()
    }

    /// A rustls server configuration presenting the chosen certificate (a new key and
    /// certificate are generated for the broken variants).
    pub fn server_config_for(&self, which: ServerCert) -> Result<Arc<ServerConfig>, CertError> {
        if which == ServerCert::Valid {
            return Ok(self.server_config());
        }
        let (chain, key) = make_server(&self.names, which, &self.ca, &self.ca_key)?;
        build_server_config(chain, &key)
    }

    /// A rustls client configuration trusting only this CA (for tests).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let cfg = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions")
            .with_root_certificates(self.root_store())
            .with_no_client_auth();
        Arc::new(cfg)
    }
}

/// A rustls server configuration from a PEM certificate chain and a PEM private key
/// (`serve --cert --key`).
pub fn server_config_from_pem_files(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<ServerConfig>, CertError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| CertError(format!("cannot read {}: {e}", p.display())))
    };
    let cert_bytes = read(cert)?;
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &cert_bytes[..])
        .collect::<Result<_, _>>()
        .map_err(|e| CertError(format!("{}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(CertError(format!(
            "{}: no PEM certificate in it",
            cert.display()
        )));
    }
    let key_bytes = read(key)?;
    let key_der = rustls_pemfile::private_key(&mut &key_bytes[..])
        .map_err(|e| CertError(format!("{}: {e}", key.display())))?
        .ok_or_else(|| CertError(format!("{}: no PEM private key in it", key.display())))?;
    let cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| CertError(format!("{} and {}: {e}", cert.display(), key.display())))?;
    Ok(Arc::new(cfg))
}

/// Writes a file only its owner can read (a private key).
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(text.as_bytes())
}

/// A server certificate of the chosen kind and its PKCS#8 key.
fn make_server(
    names: &[String],
    which: ServerCert,
    ca: &Certificate,
    ca_key: &KeyPair,
) -> Result<(Vec<CertificateDer<'static>>, Vec<u8>), CertError> {
    let names = match which {
        ServerCert::WrongName => vec!["other.invalid".to_string()],
        _ => names.to_vec(),
    };
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.clone())?;
    params
        .distinguished_name
        .push(DnType::CommonName, names[0].clone());
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = OffsetDateTime::now_utc();
    if which == ServerCert::Expired {
        params.not_before = now - Duration::days(400);
        params.not_after = now - Duration::days(30);
    } else {
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(365);
    }
    let chain = if which == ServerCert::SelfSigned {
        vec![params.self_signed(&key)?.der().clone()]
    } else {
        let leaf = params.signed_by(&key, ca, ca_key)?;
        vec![leaf.der().clone(), ca.der().clone()]
    };
    Ok((chain, key.serialize_der()))
}

fn build_server_config(
    chain: Vec<CertificateDer<'static>>,
    key: &[u8],
) -> Result<Arc<ServerConfig>, CertError> {
    let key = PrivatePkcs8KeyDer::from(key.to_vec()).into();
    let cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;

    /// Runs a handshake in memory and returns the client's error, if any.
    fn handshake(
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
        name: &str,
    ) -> Option<rustls::Error> {
        let name = ServerName::try_from(name.to_string()).unwrap();
        let mut c = rustls::ClientConnection::new(client, name).unwrap();
        let mut s = rustls::ServerConnection::new(server).unwrap();
        for _ in 0..10 {
            let mut buf = Vec::new();
            c.write_tls(&mut buf).unwrap();
            s.read_tls(&mut &buf[..]).unwrap();
            if let Err(e) = s.process_new_packets() {
                // Pass the server's alert on to the client before giving up.
                let mut out = Vec::new();
                let _ = s.write_tls(&mut out);
                let _ = c.read_tls(&mut &out[..]);
                return c.process_new_packets().err().or(Some(e));
            }
            let mut buf = Vec::new();
            s.write_tls(&mut buf).unwrap();
            c.read_tls(&mut &buf[..]).unwrap();
            if let Err(e) = c.process_new_packets() {
                return Some(e);
            }
            if !c.is_handshaking() && !s.is_handshaking() {
                return None;
            }
        }
        panic!("handshake did not finish");
    }

    #[test]
    fn a_state_dir_keeps_the_ca_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let first = TestPki::load_or_create(dir.path(), &["localhost"]).unwrap();
        let second = TestPki::load_or_create(dir.path(), &["localhost", "mail.test"]).unwrap();
        assert_eq!(first.ca_pem(), second.ca_pem());
        // The second run's server certificate verifies against the first run's CA.
        assert_eq!(
            handshake(second.server_config(), first.client_config(), "mail.test"),
            None
        );
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("ca-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn valid_and_broken_certificates() {
        let pki = TestPki::generate(&["localhost", "127.0.0.1", "::1"]).unwrap();
        assert!(pki.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let client = pki.client_config();
        assert_eq!(
            handshake(pki.server_config(), client.clone(), "localhost"),
            None
        );
        assert_eq!(
            handshake(pki.server_config(), client.clone(), "127.0.0.1"),
            None
        );
        assert_eq!(handshake(pki.server_config(), client.clone(), "::1"), None);

        use rustls::CertificateError as CE;
        let err = |which| {
            handshake(
                pki.server_config_for(which).unwrap(),
                client.clone(),
                "localhost",
            )
        };
        assert!(matches!(
            err(ServerCert::Expired),
            Some(rustls::Error::InvalidCertificate(
                CE::Expired | CE::ExpiredContext { .. }
            ))
        ));
        assert!(matches!(
            err(ServerCert::WrongName),
            Some(rustls::Error::InvalidCertificate(
                CE::NotValidForName | CE::NotValidForNameContext { .. }
            ))
        ));
        assert!(matches!(
            err(ServerCert::SelfSigned),
            Some(rustls::Error::InvalidCertificate(CE::UnknownIssuer))
        ));
    }
}
