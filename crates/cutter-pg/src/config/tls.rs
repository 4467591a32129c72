//! TLS: the rustls client configuration for an sslmode and `sslrootcert`, and the verifier
//! that libpq's modes without a host-name check need (chain only, or any certificate).
//! Invariant: handshake signatures are always verified; the chain whenever a root file is
//! configured (or under `verify-ca`/`verify-full`), the host name only under `verify-full`.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::{ConfigError, ConnConfig, Host, SslMode, SslRootCert};

impl ConnConfig {
    /// The rustls configuration for this sslmode / sslrootcert.
    pub(super) fn rustls_config(&self) -> Result<rustls::ClientConfig, ConfigError> {
        let tls_err = |problem: String| ConfigError::Tls {
            sslmode: self.sslmode,
            problem,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(format!("the TLS provider is unusable: {e}")))?;
        let roots = match &self.sslrootcert {
            Some(SslRootCert::File(p)) => Some(load_root_file(p).map_err(tls_err)?),
            Some(SslRootCert::System) => Some(bundled_roots()),
            None => None,
        };
        let mut config =
            match (self.sslmode, roots) {
                (SslMode::VerifyFull, roots) => builder
                    .with_root_certificates(roots.unwrap_or_else(bundled_roots))
                    .with_no_client_auth(),
                (SslMode::VerifyCa, None) => return Err(tls_err(
                    "sslmode=verify-ca needs the CA certificate(s) to verify the server against: \
                     set sslrootcert=/path/to/ca.pem (or PGSSLROOTCERT), or use verify-full to \
                     verify against the bundled public roots"
                        .to_owned(),
                )),
                (_, roots) => builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(NoHostNameVerifier {
                        roots: roots.map(Arc::new),
                        provider,
                    }))
                    .with_no_client_auth(),
            };
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(config)
    }

    /// The name TLS verifies: the TCP host name, else the numeric address.
    pub(super) fn tls_name(&self) -> String {
        match (&self.host, self.hostaddr) {
            (Some(Host::Tcp(h)), _) => h.clone(),
            (_, Some(a)) => a.to_string(),
            _ => "localhost".to_owned(),
        }
    }

    pub(super) fn roots_desc(&self) -> String {
        match &self.sslrootcert {
            Some(SslRootCert::File(p)) => format!("sslrootcert={}", p.display()),
            Some(SslRootCert::System) | None => {
                "the bundled public CA roots; sslrootcert is not set".to_owned()
            }
        }
    }
}

fn bundled_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots
}

fn load_root_file(path: &Path) -> Result<RootCertStore, String> {
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read sslrootcert file {}: {e}; set sslrootcert (or PGSSLROOTCERT) to a PEM \
             file with the CA certificate(s)",
            path.display()
        )
    })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("sslrootcert file {} is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "sslrootcert file {} contains no certificates (expected PEM blocks \"-----BEGIN \
             CERTIFICATE-----\")",
            path.display()
        ));
    }
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            format!(
                "certificate #{} in sslrootcert file {} cannot be used as a CA: {e}",
                i + 1,
                path.display()
            )
        })?;
    }
    Ok(roots)
}

/// The modes that never check the host name. With `roots` (`sslmode=verify-ca`, and weaker
/// modes with a root file) the chain must lead to one of them; without (`require`,
/// `prefer`, `allow` and no root file) any certificate is accepted. Either way the server
/// must prove it owns the certificate: handshake signatures are always verified.
#[derive(Debug)]
struct NoHostNameVerifier {
    roots: Option<Arc<RootCertStore>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoHostNameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
