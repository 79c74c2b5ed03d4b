//! A development PKI: a root CA, and leaf certificates that each carry exactly one SPIFFE-style
//! URI SAN naming who holds them (`spiffe://xueji/province/35/identity`,
//! `spiffe://xueji/province/35/operator/alice`).
//!
//! Production deployments bring their own CA; the node only needs PEM files.

use std::{fs, path::Path};

use chrono::{DateTime, Duration, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, SanType,
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
    /// Writes `<stem>.pem` and `<stem>.key` into `dir`, the key readable by its owner only.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<(), PkiError> {
        write_public(&dir.join(format!("{stem}.pem")), self.cert_pem.as_bytes())?;
        write_secret(&dir.join(format!("{stem}.key")), self.key_pem.as_bytes())
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `contents` to `path` through a new file created with `mode` (so a secret is never
/// readable by others, not even for a moment) and renamed over `path` (so a node re-reading its
/// material never sees half a file).
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written.map_err(io_error(path))
}

/// A private key or other secret: created readable and writable by its owner only (0600).
pub fn write_secret(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    write_file(path, contents, 0o600)
}

/// A certificate or public key (0644).
pub fn write_public(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    write_file(path, contents, 0o644)
}

/// A folder that holds secrets, created (with its parents) accessible to its owner only
/// (0700), also when it already existed.
pub fn create_private_dir(dir: &Path) -> Result<(), PkiError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_error(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_error(dir))
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

    /// Province `province`'s CA, signed by this one: it may sign leaves only (path length 0),
    /// names itself `spiffe://xueji/province/<province>` (the mark verifiers bind province
    /// identities to), and may put only `dns_names` (and names under them) in its leaves.
    pub fn new_intermediate(
        &self,
        province: &str,
        dns_names: &[&str],
        validity: Validity,
    ) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(&format!("Xueji province {province} CA"));
        params.subject_alt_names.push(SanType::URI(
            SpiffeId::province_ca_uri(province).try_into()?,
        ));
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: dns_names
                .iter()
                .map(|dns| GeneralSubtree::DnsName((*dns).to_owned()))
                .collect(),
            excluded_subtrees: Vec::new(),
        });
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

    /// Loads a root CA from its PEM certificate and key.
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

    /// Loads an intermediate CA (signed by the root) from its PEM certificate and key: the
    /// leaves it issues carry its certificate.
    pub fn load_intermediate(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        Ok(Self {
            chain_pem: cert_pem.to_owned(),
            ..Self::load(cert_pem, key_pem)?
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

    /// `spiffe://xueji/national/<name>`.
    pub fn national(name: &str) -> Self {
        Self {
            tier: Tier::National,
            name: name.to_owned(),
        }
    }

    /// `spiffe://xueji/province/<province>/<name>`.
    pub fn in_province(province: &str, name: &str) -> Self {
        Self {
            tier: Tier::Province(province.to_owned()),
            name: name.to_owned(),
        }
    }

    /// The URI a province's intermediate CA names itself by: the authority that alone may grant
    /// `spiffe://xueji/province/<province>/...` identities.
    pub fn province_ca_uri(province: &str) -> String {
        format!("spiffe://{TRUST_DOMAIN}/province/{province}")
    }

    /// An operator's tool (`operator/<user>`), as opposed to a node or service.
    pub fn is_operator(&self) -> bool {
        self.name.starts_with("operator/")
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
    /// The folder of the certificate authorities' keys, beside the node folders: `xueji serve`
    /// never reads it, and no node needs it to run.
    pub const AUTHORITIES: &str = "authorities";
    /// The root CA's files in [`AUTHORITIES`].
    pub const ROOT: &str = "root";

    /// A province's intermediate CA's files in [`AUTHORITIES`].
    pub fn province_ca(province: &str) -> String {
        format!("province-{province}")
    }
}

/// DNS names a province's CA may put in its certificates (name constraints): loopback for the
/// development federation, and the province's own zone.
pub fn province_dns_names(province: &str) -> Vec<String> {
    vec!["localhost".into(), format!("p{province}.xueji.internal")]
}

/// Services of a provincial node, each with its own certificate.
pub const PROVINCE_SERVICES: &[&str] = &["identity", "schools", "transfers", "stats"];
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

/// The root's certificate in a node folder: what the node trusts (`ca.pem`).
fn write_trusted_root(node_dir: &Path, root: &CertificateAuthority) -> Result<(), PkiError> {
    write_public(
        &node_dir.join(format!("{}.pem", files::CA)),
        root.certified.cert_pem.as_bytes(),
    )
}

/// Creates a development PKI for one node that plays every part (the national node and a
/// province) in `dir`: the node's folder (the trusted root, the node's certificate and an
/// operator tool's certificate, both national, so they may act anywhere), and the root CA's key
/// apart in `dir/authorities/`.
pub fn init_single(dir: &Path) -> Result<(), PkiError> {
    create_private_dir(dir)?;
    let authorities = dir.join(files::AUTHORITIES);
    create_private_dir(&authorities)?;
    let ca = CertificateAuthority::new_root("Xueji development root CA", Validity::days(3650))?;
    ca.certified.write(&authorities, files::ROOT)?;
    write_trusted_root(dir, &ca)?;
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

/// Creates the development PKI of a federation under `dir`: `authorities/` holds the CA keys
/// (the national root and one intermediate per province), which no node reads; `national/` the
/// national node's folder; one folder per province (`35/`, `34/`). Every node folder holds
/// `ca.pem` (the root), `node.pem` (the node as a whole), one certificate per service and
/// `operator.pem`, and no CA key.
pub fn init_federation(dir: &Path, provinces: &[&str]) -> Result<(), PkiError> {
    let validity = Validity::days(365);
    create_private_dir(dir)?;
    let authorities = dir.join(files::AUTHORITIES);
    create_private_dir(&authorities)?;
    let root = CertificateAuthority::new_root("Xueji national root CA", Validity::days(3650))?;
    root.certified.write(&authorities, files::ROOT)?;
    let write_root = |node_dir: &Path| {
        write_public(&node_dir.join("ca.pem"), root.certified.cert_pem.as_bytes())
    };

    let national_dir = dir.join("national");
    create_private_dir(&national_dir)?;
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
        create_private_dir(&province_dir)?;
        write_root(&province_dir)?;
        let dns_names = province_dns_names(province);
        let dns_names: Vec<&str> = dns_names.iter().map(String::as_str).collect();
        let intermediate = root.new_intermediate(province, &dns_names, Validity::days(1825))?;
        intermediate
            .certified
            .write(&authorities, &files::province_ca(province))?;
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
