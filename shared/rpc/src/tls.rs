use std::path::Path;

use tonic::transport::{Certificate, Identity};

#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct TlsError {
    path: String,
    source: std::io::Error,
}

/// The PEM material of one party of a mutual-TLS connection.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA that peers' certificates must chain to.
    pub ca_pem: String,
    /// Our own certificate (chain) and key.
    pub cert_pem: String,
    pub key_pem: String,
}

impl TlsFiles {
    /// Reads `<dir>/ca.pem` and `<dir>/<stem>.pem` + `<dir>/<stem>.key`.
    pub fn from_dir(dir: &Path, stem: &str) -> Result<Self, TlsError> {
        Ok(Self {
            ca_pem: read(&dir.join("ca.pem"))?,
            cert_pem: read(&dir.join(format!("{stem}.pem")))?,
            key_pem: read(&dir.join(format!("{stem}.key")))?,
        })
    }

    pub fn from_paths(ca: &Path, cert: &Path, key: &Path) -> Result<Self, TlsError> {
        Ok(Self {
            ca_pem: read(ca)?,
            cert_pem: read(cert)?,
            key_pem: read(key)?,
        })
    }

    pub(crate) fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, &self.key_pem)
    }

    pub(crate) fn ca(&self) -> Certificate {
        Certificate::from_pem(&self.ca_pem)
    }
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError {
        path: path.display().to_string(),
        source,
    })
}
