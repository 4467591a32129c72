//! TLS: the rustls client configuration for an sslmode, `sslrootcert` and the client
//! certificate, and the verifier that libpq's modes without a host-name check need (chain
//! only, or any certificate). Invariant: handshake signatures are always verified; the
//! chain whenever a root file is configured (and `verify-ca`/`verify-full` refuse to run
//! without one), the host name only under `verify-full`; a client key is used only if
//! its permissions pass libpq's check.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::{ConfigError, ConnConfig, Host, SslMode, SslRootCert};

/// A client certificate chain and its key.
type ClientCert = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

impl ConnConfig {
    /// The rustls configuration for this sslmode / sslrootcert / client certificate.
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
            Some(SslRootCert::System) => Some(system_roots().map_err(tls_err)?),
            None => None,
        };
        let verifying = matches!(self.sslmode, SslMode::VerifyCa | SslMode::VerifyFull);
        let builder = match (self.sslmode, roots) {
            (SslMode::VerifyFull, Some(roots)) => builder.with_root_certificates(roots),
            (_, None) if verifying => {
                return Err(tls_err(match &self.default_root_cert {
                    Some(f) => format!(
                        "root certificate file \"{}\" does not exist\nEither provide the file or \
                         change sslmode to disable server certificate verification. (Set \
                         sslrootcert or PGSSLROOTCERT to the CA certificate(s) that signed the \
                         server's certificate, or sslrootcert=system for the operating system's \
                         store.)",
                        f.display()
                    ),
                    None => "could not get home directory to locate root certificate file\n\
                             Either provide the file or change sslmode to disable server \
                             certificate verification."
                        .to_owned(),
                }))
            }
            (_, roots) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoHostNameVerifier {
                    roots: roots.map(Arc::new),
                    provider,
                })),
        };
        let mut config = match self.client_cert().map_err(tls_err)? {
            Some((chain, key)) => {
                let key_file = self.sslkey.as_deref().unwrap_or(Path::new(""));
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    tls_err(match e {
                        rustls::Error::InconsistentKeys(_) => format!(
                            "certificate does not match private key file \"{}\": {e}",
                            key_file.display()
                        ),
                        e => format!(
                            "could not load private key file \"{}\": {e}",
                            key_file.display()
                        ),
                    })
                })?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(config)
    }

    /// The client certificate and key, loaded and checked as libpq 15 does: no
    /// certificate file (missing) means none is sent; a certificate without its key, a key
    /// that is not a regular file or that others can read (mode above 0600, or 0640 for a
    /// key owned by root) is an error.
    fn client_cert(&self) -> Result<Option<ClientCert>, String> {
        let Some(cert_file) = &self.sslcert else {
            return Ok(None);
        };
        match std::fs::metadata(cert_file) {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                return Ok(None)
            }
            Err(e) => {
                return Err(format!(
                    "could not open certificate file \"{}\": {e}",
                    cert_file.display()
                ))
            }
        }
        let bytes = std::fs::read(cert_file).map_err(|e| {
            format!(
                "could not read certificate file \"{}\": {e}",
                cert_file.display()
            )
        })?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| {
                format!(
                    "could not read certificate file \"{}\": {e}",
                    cert_file.display()
                )
            })?;
        if chain.is_empty() {
            return Err(format!(
                "could not read certificate file \"{}\": no PEM certificate in it",
                cert_file.display()
            ));
        }
        let Some(key_file) = &self.sslkey else {
            return Err("could not get home directory to locate client certificate files".into());
        };
        let meta = std::fs::metadata(key_file).map_err(|_| {
            format!(
                "certificate present, but not private key file \"{}\"",
                key_file.display()
            )
        })?;
        if !meta.is_file() {
            return Err(format!(
                "private key file \"{}\" is not a regular file",
                key_file.display()
            ));
        }
        // libpq 15: a root-owned key may be 0640 (system-wide keys), any other 0600.
        let mode = meta.mode();
        let forbidden = if meta.uid() == 0 { 0o037 } else { 0o077 };
        if mode & forbidden != 0 {
            return Err(format!(
                "private key file \"{}\" has group or world access; file must have permissions \
                 u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) \
                 or less if owned by root (it has mode {:04o})",
                key_file.display(),
                mode & 0o7777
            ));
        }
        let mut pem = std::fs::read(key_file).map_err(|e| {
            format!(
                "could not load private key file \"{}\": {e}",
                key_file.display()
            )
        })?;
        let encrypted = {
            let text = String::from_utf8_lossy(&pem);
            text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED")
        };
        let key = if encrypted {
            Err(format!(
                "could not load private key file \"{}\": it is encrypted, and cutter does not \
                 support sslpassword; keep an unencrypted copy readable only by you (openssl pkey \
                 -in KEY -out KEY.plain; chmod 0600 KEY.plain)",
                key_file.display()
            ))
        } else {
            PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
                format!(
                    "could not load private key file \"{}\": {e}",
                    key_file.display()
                )
            })
        };
        zeroize::Zeroize::zeroize(&mut pem);
        Ok(Some((chain, key?)))
    }

    /// The name TLS verifies: the TCP host name, else the numeric address.
    pub(super) fn tls_name(&self) -> String {
        let ep = self.first();
        match (&ep.host, ep.hostaddr) {
            (Some(Host::Tcp(h)), _) => h.clone(),
            (_, Some(a)) => a.to_string(),
            _ => "localhost".to_owned(),
        }
    }

    pub(super) fn roots_desc(&self) -> String {
        match &self.sslrootcert {
            Some(SslRootCert::File(p)) => format!("sslrootcert={}", p.display()),
            Some(SslRootCert::System) => {
                "sslrootcert=system, the operating system's store".to_owned()
            }
            None => "no root certificate is configured".to_owned(),
        }
    }
}

/// The operating system's trust store (`rustls-native-certs`: `SSL_CERT_FILE`,
/// `SSL_CERT_DIR`, else the distribution's bundle).
fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _unusable) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(format!(
            "sslrootcert=system: the operating system's certificate store has no usable \
             certificate{}; install the ca-certificates package or set SSL_CERT_FILE to a PEM \
             bundle",
            if errors.is_empty() {
                String::new()
            } else {
                format!(" ({})", errors.join("; "))
            }
        ));
    }
    Ok(roots)
}

fn load_root_file(path: &Path) -> Result<RootCertStore, String> {
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "root certificate file \"{}\" does not exist\nEither provide the file or change \
                 sslmode to disable server certificate verification. (Unlike libpq, cutter does \
                 not quietly skip verification when the sslrootcert it was given is missing.)",
                path.display()
            )
        } else {
            format!(
                "could not read root certificate file \"{}\": {e}",
                path.display()
            )
        }
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
