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
    /// The certificates between this CA and the root (this CA's own for an intermediate), PEM,
    /// appended to every leaf so that peers trusting only the root can build the path.
    chain_pem: String,
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
            chain_pem: String::new(),
        })
    }

    /// A CA signed by this one that may sign leaves only (path length 0): a province's.
    pub fn new_intermediate(
        &self,
        common_name: &str,
        validity: Validity,
    ) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        set_validity(&mut params, validity);
        let cert = params.signed_by(&key, &self.issuer)?;
        let certified = CertifiedKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        Ok(Self {
            chain_pem: format!("{}{}", certified.cert_pem, self.chain_pem),
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
            chain_pem: String::new(),
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
            cert_pem: format!("{}{}", cert.pem(), self.chain_pem),
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
pub fn spiffe_id_of(der: &[u8]) -> Result<SpiffeId, PkiError> {
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
        [uri] => SpiffeId::parse(uri),
        [] => Err(PkiError::Parse("certificate has no URI SAN".into())),
        _ => Err(PkiError::Parse(format!(
            "certificate has {} URI SANs; exactly one is allowed",
            uris.len()
        ))),
    }
}

/// Which tier a certificate speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Tier {
    National,
    /// A province, by its 2-digit code.
    Province(String),
}

/// A parsed Xueji SPIFFE id: `spiffe://xueji/national/<name>` or
/// `spiffe://xueji/province/<2 digits>/<name>`, where `<name>` is a service (`identity`,
/// `schools`, `national`, `node`) or `operator/<user>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    pub tier: Tier,
    pub name: String,
}

impl SpiffeId {
    pub fn parse(uri: &str) -> Result<Self, PkiError> {
        let bad = |why: &str| PkiError::Parse(format!("{uri:?} is not a Xueji identity: {why}"));
        let path = uri
            .strip_prefix(&format!("spiffe://{TRUST_DOMAIN}/"))
            .ok_or_else(|| bad("outside the spiffe://xueji/ trust domain"))?;
        let (tier, name) = if let Some(name) = path.strip_prefix("national/") {
            (Tier::National, name)
        } else if let Some(rest) = path.strip_prefix("province/") {
            let (province, name) = rest
                .split_once('/')
                .ok_or_else(|| bad("no service after the province"))?;
            if province.len() != 2 || !province.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("the province is not 2 digits"));
            }
            (Tier::Province(province.to_owned()), name)
        } else {
            return Err(bad("the tier is neither national nor province"));
        };
        if name.is_empty() || name.split('/').any(str::is_empty) {
            return Err(bad("empty service name"));
        }
        Ok(Self {
            tier,
            name: name.to_owned(),
        })
    }

    /// The province this identity is bound to; `None` for the national tier.
    pub fn province(&self) -> Option<&str> {
        match &self.tier {
            Tier::National => None,
            Tier::Province(code) => Some(code),
        }
    }
}

impl std::fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.tier {
            Tier::National => write!(f, "spiffe://{TRUST_DOMAIN}/national/{}", self.name),
            Tier::Province(code) => {
                write!(f, "spiffe://{TRUST_DOMAIN}/province/{code}/{}", self.name)
            }
        }
    }
}

/// The files `xueji pki init` writes, relative to a node's folder.
pub mod files {
    /// The trusted root (only the root: intermediates travel with the leaves).
    pub const CA: &str = "ca";
    /// The certificate a node presents as a server when it runs several services.
    pub const NODE: &str = "node";
    /// The client certificate of an operator's tool.
    pub const OPERATOR: &str = "operator";
    /// A province's intermediate CA.
    pub const INTERMEDIATE: &str = "intermediate";
}

/// Services of a provincial node, each with its own certificate.
pub const PROVINCE_SERVICES: &[&str] = &["identity", "schools"];
/// Services of the national node, each with its own certificate.
pub const NATIONAL_SERVICES: &[&str] = &["national", "schools"];

/// SPIFFE ids of this deployment.
pub fn province_service_id(province: &str, service: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/province/{province}/{service}")
}

pub fn national_service_id(service: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/national/{service}")
}

pub fn operator_id(province: &str, user: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/province/{province}/operator/{user}")
}

pub fn national_operator_id(user: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/national/operator/{user}")
}

fn create_dir(dir: &Path) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.display().to_string(),
        source,
    })
}

/// Creates a development PKI for one node that plays every part (the national node and a
/// province) in `dir`: the root CA, the node's certificate and an operator tool's certificate,
/// both national, so they may act anywhere.
pub fn init_single(dir: &Path) -> Result<(), PkiError> {
    create_dir(dir)?;
    let ca = CertificateAuthority::new_root("Xueji development root CA", Validity::days(3650))?;
    ca.certified.write(dir, files::CA)?;
    ca.issue(
        &national_service_id("node"),
        &["localhost"],
        Validity::days(365),
    )?
    .write(dir, files::NODE)?;
    ca.issue(&national_operator_id("cli"), &[], Validity::days(365))?
        .write(dir, files::OPERATOR)?;
    Ok(())
}

/// Creates the development PKI of a federation under `dir`: `root/` holds the national root CA;
/// `national/` the national node's certificates; one folder per province (`35/`, `34/`) its
/// intermediate CA and its certificates. Every node folder holds `ca.pem` (the root),
/// `node.pem` (the node as a whole), one certificate per service and `operator.pem`.
pub fn init_federation(dir: &Path, provinces: &[&str]) -> Result<(), PkiError> {
    let validity = Validity::days(365);
    let root_dir = dir.join("root");
    create_dir(&root_dir)?;
    let root = CertificateAuthority::new_root("Xueji national root CA", Validity::days(3650))?;
    root.certified.write(&root_dir, files::CA)?;
    let trusted_root = CertifiedKey {
        cert_pem: root.certified.cert_pem.clone(),
        key_pem: String::new(),
    };
    let write_root =
        |node_dir: &Path| write_file(&node_dir.join("ca.pem"), &trusted_root.cert_pem, 0o644);

    let national_dir = dir.join("national");
    create_dir(&national_dir)?;
    write_root(&national_dir)?;
    root.issue(&national_service_id("node"), &["localhost"], validity)?
        .write(&national_dir, files::NODE)?;
    for service in NATIONAL_SERVICES {
        root.issue(&national_service_id(service), &["localhost"], validity)?
            .write(&national_dir, service)?;
    }
    root.issue(&national_operator_id("cli"), &[], validity)?
        .write(&national_dir, files::OPERATOR)?;

    for province in provinces {
        let province_dir = dir.join(province);
        create_dir(&province_dir)?;
        write_root(&province_dir)?;
        let intermediate = root.new_intermediate(
            &format!("Xueji province {province} CA"),
            Validity::days(1825),
        )?;
        intermediate
            .certified
            .write(&province_dir, files::INTERMEDIATE)?;
        intermediate
            .issue(
                &province_service_id(province, "node"),
                &["localhost"],
                validity,
            )?
            .write(&province_dir, files::NODE)?;
        for service in PROVINCE_SERVICES {
            intermediate
                .issue(
                    &province_service_id(province, service),
                    &["localhost"],
                    validity,
                )?
                .write(&province_dir, service)?;
        }
        intermediate
            .issue(&operator_id(province, "cli"), &[], validity)?
            .write(&province_dir, files::OPERATOR)?;
    }
    Ok(())
}
