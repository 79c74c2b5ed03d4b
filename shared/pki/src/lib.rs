//! A development PKI: a root CA, and leaf certificates that each carry exactly one SPIFFE-style
//! URI SAN naming who holds them (`spiffe://xueji/province/35/identity`,
//! `spiffe://xueji/province/35/operator/alice`).
//!
//! Production deployments bring their own CA; the node only needs PEM files.

use std::{fs, path::Path};

use chrono::{DateTime, Duration, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

pub const TRUST_DOMAIN: &str = "xueji";

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Parse(String),
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct CertifiedKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl CertifiedKey {
    /// Writes `<stem>.pem` and `<stem>.key` into `dir` (the key readable by the owner only).
    pub fn write(&self, dir: &Path, stem: &str) -> Result<(), PkiError> {
        write_file(&dir.join(format!("{stem}.pem")), &self.cert_pem, 0o644)?;
        write_file(&dir.join(format!("{stem}.key")), &self.key_pem, 0o600)
    }
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), PkiError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| PkiError::Io {
        path: path.display().to_string(),
        source,
    };
    fs::write(path, contents).map_err(io)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io)
}

/// Validity window of a certificate to issue.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

impl Validity {
    /// From an hour ago (tolerating clock skew) for `days` days.
    pub fn days(days: i64) -> Self {
        let now = Utc::now();
        Self {
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(days),
        }
    }
}

fn to_offset(time: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(time.timestamp()).expect("timestamp in range")
}

/// A certificate authority that can issue leaf certificates.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    pub certified: CertifiedKey,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// A new self-signed root.
    pub fn new_root(common_name: &str, validity: Validity) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        set_validity(&mut params, validity);
        let cert = params.self_signed(&key)?;
        let certified = CertifiedKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        Ok(Self {
            issuer: Issuer::new(params, key),
            certified,
        })
    }

    /// Loads a CA from its PEM certificate and key.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        Ok(Self {
            issuer: Issuer::from_ca_cert_pem(cert_pem, key)?,
            certified: CertifiedKey {
                cert_pem: cert_pem.to_owned(),
                key_pem: key_pem.to_owned(),
            },
        })
    }

    /// A leaf certificate for `spiffe_id`, usable as a TLS server (with `dns_names` and loopback
    /// addresses) and as a TLS client.
    pub fn issue(
        &self,
        spiffe_id: &str,
        dns_names: &[&str],
        validity: Validity,
    ) -> Result<CertifiedKey, PkiError> {
        self.issue_with_uris(&[spiffe_id], dns_names, validity)
    }

    /// Like [`issue`](Self::issue) but with any number of URI SANs: only for tests that need
    /// certificates a node must refuse.
    pub fn issue_with_uris(
        &self,
        uris: &[&str],
        dns_names: &[&str],
        validity: Validity,
    ) -> Result<CertifiedKey, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(uris.first().copied().unwrap_or("anonymous"));
        for uri in uris {
            params
                .subject_alt_names
                .push(SanType::URI((*uri).try_into()?));
        }
        for dns in dns_names {
            params
                .subject_alt_names
                .push(SanType::DnsName((*dns).try_into()?));
        }
        if !dns_names.is_empty() {
            params
                .subject_alt_names
                .push(SanType::IpAddress([127, 0, 0, 1].into()));
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        set_validity(&mut params, validity);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(CertifiedKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "Xueji");
    name.push(DnType::CommonName, common_name);
    name
}

fn set_validity(params: &mut CertificateParams, validity: Validity) {
    params.not_before = to_offset(validity.not_before);
    params.not_after = to_offset(validity.not_after);
}

/// The one URI SAN of a DER certificate. Refuses certificates with none or several.
pub fn spiffe_id_of(der: &[u8]) -> Result<String, PkiError> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| PkiError::Parse(format!("certificate does not parse: {e}")))?;
    let sans = cert
        .subject_alternative_name()
        .map_err(|e| PkiError::Parse(format!("bad subject alternative names: {e}")))?;
    let uris: Vec<&str> = sans
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(uri) => Some(*uri),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    match uris[..] {
        [uri] if uri.starts_with(&format!("spiffe://{TRUST_DOMAIN}/")) => Ok(uri.to_owned()),
        [uri] => Err(PkiError::Parse(format!(
            "URI SAN {uri:?} is not in the spiffe://{TRUST_DOMAIN}/ trust domain"
        ))),
        [] => Err(PkiError::Parse("certificate has no URI SAN".into())),
        _ => Err(PkiError::Parse(format!(
            "certificate has {} URI SANs; exactly one is allowed",
            uris.len()
        ))),
    }
}

/// The files `xueji pki init` writes, relative to its output folder.
pub mod files {
    pub const CA: &str = "ca";
    pub const NODE: &str = "node";
    pub const OPERATOR: &str = "operator";
}

/// SPIFFE ids of this deployment.
pub fn province_service_id(province: &str, service: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/province/{province}/{service}")
}

pub fn operator_id(province: &str, user: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/province/{province}/operator/{user}")
}

/// Creates a development PKI for one provincial node in `dir`: the root CA, the node's
/// certificate (server and client), an operator tool's client certificate.
pub fn init_province(dir: &Path, province: &str) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let ca = CertificateAuthority::new_root("Xueji development root CA", Validity::days(3650))?;
    ca.certified.write(dir, files::CA)?;
    ca.issue(
        &province_service_id(province, "node"),
        &["localhost"],
        Validity::days(365),
    )?
    .write(dir, files::NODE)?;
    ca.issue(&operator_id(province, "cli"), &[], Validity::days(365))?
        .write(dir, files::OPERATOR)?;
    Ok(())
}
