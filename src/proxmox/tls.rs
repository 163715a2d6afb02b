//! TLS to the Proxmox API, three ways (see PROXMOX.md §5):
//!
//! - **verify** (default): the certificate chains to a public root or, when
//!   `PROXMOX_CA_FILE` is set, to that PEM only (Proxmox's own `pve-root-ca.pem`), and names
//!   the host;
//! - **pinned** (`PROXMOX_FINGERPRINT`): the leaf certificate's SHA-256 is one of the pins,
//!   as `pvenode cert info` prints them; no chain or name check, which is what makes pinning
//!   work with Proxmox's default certificates reached by an IP they do not list;
//! - **insecure** (`VERIFY_SSL=false`, the old tool's setting): anything is accepted.
//!
//! In every mode the handshake signature is still checked, so the peer holds the key of the
//! certificate it shows.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::config::TlsMode;

/// The TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `PROXMOX_CA_FILE` held no usable certificate.
    #[error("PROXMOX_CA_FILE: {0}")]
    CaFile(String),
    /// rustls refused the configuration.
    #[error("TLS setup: {0}")]
    Setup(#[from] rustls::Error),
}

/// A rustls client configuration for `mode`.
pub fn client_config(mode: &TlsMode) -> Result<ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = match mode {
        TlsMode::Verify { ca_pem, .. } => {
            // With PROXMOX_CA_FILE only that CA is trusted (a public CA could otherwise vouch
            // for a look-alike name); without it, the public roots (an ACME certificate).
            let mut roots = RootCertStore::empty();
            if ca_pem.is_none() {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            if let Some(pem) = ca_pem {
                let mut added = 0;
                for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                    let cert =
                        cert.map_err(|e| TlsError::CaFile(format!("unreadable PEM: {e}")))?;
                    roots.add(cert).map_err(|e| {
                        TlsError::CaFile(format!("not a usable CA certificate: {e}"))
                    })?;
                    added += 1;
                }
                if added == 0 {
                    return Err(TlsError::CaFile(
                        "no certificate found; expected a PEM file such as /etc/pve/pve-root-ca.pem"
                            .into(),
                    ));
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TlsMode::Pinned(pins) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(LeafCheck {
                pins: Some(pins.clone()),
                provider,
            }))
            .with_no_client_auth(),
        TlsMode::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(LeafCheck {
                pins: None,
                provider,
            }))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// SHA-256 of a certificate, as `pvenode cert info` prints it (upper-case hex pairs, `:`).
pub fn fingerprint(cert: &[u8]) -> String {
    let digest = Sha256::digest(cert);
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// Accepts a leaf whose SHA-256 is pinned (or any leaf, with no pins), and checks handshake
/// signatures with the provider's algorithms.
#[derive(Debug)]
struct LeafCheck {
    pins: Option<Vec<[u8; 32]>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for LeafCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(pins) = &self.pins else {
            return Ok(ServerCertVerified::assertion());
        };
        let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if pins.contains(&digest) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "certificate fingerprint {} is not in PROXMOX_FINGERPRINT",
                fingerprint(end_entity.as_ref())
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
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
        verify_tls13_signature(
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
