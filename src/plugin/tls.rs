//! The plugin server's TLS: a fresh server certificate per process, and a client-certificate
//! check pinned to exactly the certificate Terraform handed us.
//!
//! Terraform and OpenTofu (go-plugin's "automatic mTLS") put their client certificate in
//! `PLUGIN_CLIENT_CERT` and pin the server certificate we print in the handshake. Their client
//! certificate is self-signed with the CA flag set, which webpki refuses as an end entity
//! (`CaUsedAsEndEntity`), so a chain-building verifier cannot be used: ours accepts those exact
//! certificate bytes and nothing else, and still verifies the handshake signature, so only the
//! holder of that certificate's private key gets in.

use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// The client certificate from `PLUGIN_CLIENT_CERT` (PEM).
pub fn client_certificate(pem: &str) -> Result<CertificateDer<'static>> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|err| anyhow!("PLUGIN_CLIENT_CERT is not a PEM certificate: {err}"))
}

/// The TLS acceptor and the DER of the server certificate it presents.
pub fn acceptor(
    client_cert: CertificateDer<'static>,
) -> Result<(tokio_rustls::TlsAcceptor, Vec<u8>)> {
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let (cert_der, key_der) = server_certificate()?;
    let verifier = Arc::new(PinnedClientCertificate {
        expected: client_cert,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der)),
        )
        .context("TLS server configuration")?;
    // gRPC runs over HTTP/2, and Go's gRPC client insists on negotiating it through ALPN.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(config)), cert_der))
}

/// A self-signed certificate for "localhost" (ECDSA P-256: the cheapest key to generate at
/// every provider start), valid from a little before now for a year; returns (cert, key) DER.
fn server_certificate() -> Result<(Vec<u8>, Vec<u8>)> {
    let key = rcgen::KeyPair::generate().context("generating the server key")?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .context("server certificate parameters")?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::seconds(30);
    params.not_after = now + time::Duration::days(365);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params
        .self_signed(&key)
        .context("signing the server certificate")?;
    Ok((cert.der().to_vec(), key.serialize_der()))
}

/// Accepts exactly one client certificate, byte for byte, and checks handshake signatures.
#[derive(Debug)]
struct PinnedClientCertificate {
    expected: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PinnedClientCertificate {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
