//! TLS for `ssl:` controllers and `pssl:` listeners, as OVS `stream-ssl.c`
//! does it: TLS 1.2 or later, a certificate required from both sides (mutual
//! authentication), and the peer's chain verified against the configured CA
//! only — OVS's `ovs-pki` certificates name no host or address the peer
//! could be checked against, so the CA is the pin, not a name.
//!
//! The key, certificate and CA files are re-read when they change (their
//! size or modification time), checked at every new connection, so renewed
//! certificates apply to the next connection without a restart (OVS
//! `stream_ssl_set_key_and_cert()` watches the files the same way).
//!
//! Uses rustls with the `ring` provider (no C crypto library to build).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore, ServerConfig,
    SignatureScheme,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The three files of `[ssl]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM private key.
    pub private_key: PathBuf,
    /// PEM certificate (chain) presented to peers.
    pub certificate: PathBuf,
    /// PEM certificate of the CA that peers' certificates must chain to.
    pub ca_cert: PathBuf,
}

type Stamp = Vec<(u64, Option<SystemTime>)>;

struct Loaded {
    files: TlsFiles,
    stamp: Stamp,
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

fn cache() -> &'static Mutex<Option<Loaded>> {
    static C: std::sync::OnceLock<Mutex<Option<Loaded>>> = std::sync::OnceLock::new();
    C.get_or_init(|| Mutex::new(None))
}

fn stamp(f: &TlsFiles) -> Stamp {
    [&f.private_key, &f.certificate, &f.ca_cert]
        .iter()
        .map(|p| match std::fs::metadata(p) {
            Ok(m) => (m.len(), m.modified().ok()),
            Err(_) => (0, None),
        })
        .collect()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS 1.2 and 1.3 (OVS refuses SSLv3, TLS 1.0 and 1.1 by default too).
const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn read_certs(p: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(p)
        .map_err(|e| format!("{}: {e}", p.display()))?
        .collect();
    let certs = certs.map_err(|e| format!("{}: {e}", p.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", p.display()));
    }
    Ok(certs)
}

fn load(files: &TlsFiles) -> Result<(Arc<ServerConfig>, Arc<ClientConfig>), String> {
    let key = PrivateKeyDer::from_pem_file(&files.private_key)
        .map_err(|e| format!("{}: {e}", files.private_key.display()))?;
    let certs = read_certs(&files.certificate)?;
    let mut roots = RootCertStore::empty();
    for ca in read_certs(&files.ca_cert)? {
        roots
            .add(ca)
            .map_err(|e| format!("{}: {e}", files.ca_cert.display()))?;
    }
    let roots = Arc::new(roots);
    let p = provider();
    let client_verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), p.clone())
        .build()
        .map_err(|e| format!("CA {}: {e}", files.ca_cert.display()))?;
    let server = ServerConfig::builder_with_provider(p.clone())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(certs.clone(), key.clone_key())
        .map_err(|e| format!("{}: {e}", files.certificate.display()))?;
    let server_verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots, p.clone())
            .build()
            .map_err(|e| format!("CA {}: {e}", files.ca_cert.display()))?;
    let client = ClientConfig::builder_with_provider(p)
        .with_protocol_versions(VERSIONS)
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainOnly(server_verifier)))
        .with_client_auth_cert(certs, key)
        .map_err(|e| format!("{}: {e}", files.certificate.display()))?;
    Ok((Arc::new(server), Arc::new(client)))
}

/// The configurations for `files`, re-read if any file changed since the
/// last call.
fn configs(files: &TlsFiles) -> Result<(Arc<ServerConfig>, Arc<ClientConfig>), String> {
    let now = stamp(files);
    let mut c = cache()
        .lock()
        .map_err(|_| "TLS cache poisoned".to_string())?;
    if let Some(l) = c.as_ref() {
        if &l.files == files && l.stamp == now {
            return Ok((l.server.clone(), l.client.clone()));
        }
    }
    let (server, client) = load(files)?;
    tracing::info!(
        "TLS: loaded key {}, certificate {}, CA {}",
        files.private_key.display(),
        files.certificate.display(),
        files.ca_cert.display()
    );
    *c = Some(Loaded {
        files: files.clone(),
        stamp: now,
        server: server.clone(),
        client: client.clone(),
    });
    Ok((server, client))
}

/// Server side (`pssl:`), client certificate required.
pub fn acceptor(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, String> {
    configs(files).map(|(s, _)| tokio_rustls::TlsAcceptor::from(s))
}

/// Client side (`ssl:`), presenting our certificate.
pub fn connector(files: &TlsFiles) -> Result<tokio_rustls::TlsConnector, String> {
    configs(files).map(|(_, c)| tokio_rustls::TlsConnector::from(c))
}

/// The name given to the client handshake: the address connected to (only
/// for SNI-less bookkeeping; [`ChainOnly`] does not check it).
pub fn server_name(ip: std::net::IpAddr) -> ServerName<'static> {
    ServerName::IpAddress(ip.into())
}

/// Verifies the server's chain, validity and signatures against the CA like
/// the webpki verifier, and accepts a certificate that does not name the
/// address we connected to (the webpki verifier checks the name last, after
/// the chain, so only that check is waived).
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
