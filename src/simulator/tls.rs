//! A fresh certificate pair shaped like a node's default ones: a self-signed cluster CA
//! (`pve-root-ca.pem`) signing the node certificate pveproxy serves (`pve-ssl.pem`).
//!
//! Invariant: keys live only in memory and die with the simulator; nothing is written to disk.

use std::io;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

/// The CA and leaf of one simulator run.
pub(crate) struct Certificates {
    /// The CA certificate, PEM: what a user passes as the trusted CA file.
    pub(crate) ca_pem: String,
    /// The served leaf certificate, DER.
    pub(crate) leaf_der: CertificateDer<'static>,
    /// The leaf's private key (PKCS#8).
    leaf_key: PrivatePkcs8KeyDer<'static>,
}

impl Certificates {
    /// Makes a CA (10 years, like `gen_pveca_cert`) and a leaf for `127.0.0.1`, `localhost`
    /// and `::1` signed by it. ECDSA P-256 rather than Proxmox's RSA: rcgen's ring backend
    /// cannot generate RSA keys, and no client cares which.
    pub(crate) fn generate(node: &str) -> io::Result<Certificates> {
        let ca_key = KeyPair::generate().map_err(io::Error::other)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(io::Error::other)?;
        ca.distinguished_name = DistinguishedName::new();
        ca.distinguished_name
            .push(DnType::CommonName, "Proxmox Virtual Environment");
        ca.distinguished_name
            .push(DnType::OrganizationName, "PVE Cluster Manager CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // keyUsage present, as on CAs made since pve-cluster 9.1.2: strict verifiers want it.
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.not_before = rcgen::date_time_ymd(2025, 1, 1);
        ca.not_after = rcgen::date_time_ymd(2035, 1, 1);
        let ca_cert = ca.self_signed(&ca_key).map_err(io::Error::other)?;

        let leaf_key = KeyPair::generate().map_err(io::Error::other)?;
        let sans = vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
            "::1".to_string(),
        ];
        let mut leaf = CertificateParams::new(sans).map_err(io::Error::other)?;
        leaf.distinguished_name = DistinguishedName::new();
        leaf.distinguished_name
            .push(DnType::OrganizationalUnitName, "PVE Cluster Node");
        leaf.distinguished_name
            .push(DnType::OrganizationName, "Proxmox Virtual Environment");
        leaf.distinguished_name.push(DnType::CommonName, node);
        leaf.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        leaf.not_before = rcgen::date_time_ymd(2025, 1, 1);
        leaf.not_after = rcgen::date_time_ymd(2027, 1, 1);
        let leaf_cert = leaf
            .signed_by(&leaf_key, &ca_cert, &ca_key)
            .map_err(io::Error::other)?;

        Ok(Certificates {
            ca_pem: ca_cert.pem(),
            leaf_der: leaf_cert.der().clone(),
            leaf_key: PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
        })
    }

    /// `SHA-256` of the leaf DER as `pvenode cert info` prints it: upper-case hex pairs joined
    /// by `:` (95 characters).
    pub(crate) fn leaf_fingerprint(&self) -> String {
        fingerprint(&self.leaf_der)
    }

    /// The rustls server config: the leaf alone (pve-ssl.pem holds no chain), HTTP/1.1 only.
    pub(crate) fn server_config(&self) -> io::Result<Arc<rustls::ServerConfig>> {
        // An explicit provider, so the process-wide default (which the host program or
        // reqwest may set) does not matter.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(
                vec![self.leaf_der.clone()],
                PrivateKeyDer::Pkcs8(self.leaf_key.clone_key()),
            )
            .map_err(io::Error::other)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Upper-case, colon-separated SHA-256 of a DER certificate.
pub(crate) fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
