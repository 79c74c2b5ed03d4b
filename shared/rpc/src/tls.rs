//! Mutual-TLS material, reloaded from disk when its files change.
//!
//! Every new connection, accepted or opened, takes the current rustls configuration: replacing a
//! node's certificate, key or trusted root on disk takes effect without a restart, while
//! connections already open keep the material they started with.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, Instant, SystemTime},
};

use rustls::{
    RootCertStore,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};

use crate::{
    ExpectedServer,
    verify::{ExpectedServerVerifier, FederationTrust, MemberClientVerifier},
};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{what}: {detail}")]
    Material { what: &'static str, detail: String },
}

/// The PEM material of one party of a mutual-TLS connection.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The root that peers' certificates must chain to.
    pub ca_pem: String,
    /// Our own certificate, followed by any intermediate CA certificates, and its key.
    pub cert_pem: String,
    pub key_pem: String,
}

impl TlsFiles {
    /// Reads `<dir>/ca.pem` and `<dir>/<stem>.pem` + `<dir>/<stem>.key`.
    pub fn from_dir(dir: &Path, stem: &str) -> Result<Self, TlsError> {
        TlsPaths::in_dir(dir, stem).read()
    }

    pub fn from_paths(ca: &Path, cert: &Path, key: &Path) -> Result<Self, TlsError> {
        TlsPaths {
            ca: ca.into(),
            cert: cert.into(),
            key: key.into(),
        }
        .read()
    }

    fn configs(&self) -> Result<Configs, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| material("trusted root", e))?;
            roots.add(cert).map_err(|e| material("trusted root", e))?;
        }
        if roots.is_empty() {
            return Err(material("trusted root", "no certificate in the PEM"));
        }
        let trust = Arc::new(FederationTrust::new(roots, provider.clone()));
        let chain = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| material("certificate", e))?;
        if chain.is_empty() {
            return Err(material("certificate", "no certificate in the PEM"));
        }
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| material("private key", e))?;

        let client_verifier = Arc::new(MemberClientVerifier(trust.clone()));
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| material("server protocol versions", e))?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| material("server certificate", e))?;
        server.alpn_protocols = vec![b"h2".to_vec()];
        let client = Arc::new(ClientMaterial { trust, chain, key });
        // Fail now, not at the first connection, when our own certificate does not fit its key.
        client.config(ExpectedServer::AnyNode)?;
        Ok(Configs {
            server: Arc::new(server),
            client,
        })
    }
}

/// What a client connection is made of; the verifier depends on whom it sets out to reach.
#[derive(Debug)]
pub(crate) struct ClientMaterial {
    pub(crate) trust: Arc<FederationTrust>,
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
}

impl ClientMaterial {
    fn config(&self, expected: ExpectedServer) -> Result<rustls::ClientConfig, TlsError> {
        let verifier = Arc::new(ExpectedServerVerifier {
            trust: self.trust.clone(),
            expected,
        });
        let mut client = rustls::ClientConfig::builder_with_provider(self.trust.provider().clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| material("client protocol versions", e))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| material("client certificate", e))?;
        client.alpn_protocols = vec![b"h2".to_vec()];
        Ok(client)
    }
}

fn material(what: &'static str, detail: impl std::fmt::Display) -> TlsError {
    TlsError::Material {
        what,
        detail: detail.to_string(),
    }
}

#[derive(Debug, Clone)]
struct TlsPaths {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl TlsPaths {
    fn in_dir(dir: &Path, stem: &str) -> Self {
        Self {
            ca: dir.join("ca.pem"),
            cert: dir.join(format!("{stem}.pem")),
            key: dir.join(format!("{stem}.key")),
        }
    }

    fn read(&self) -> Result<TlsFiles, TlsError> {
        Ok(TlsFiles {
            ca_pem: read(&self.ca)?,
            cert_pem: read(&self.cert)?,
            key_pem: read(&self.key)?,
        })
    }

    /// What the files look like now, to notice a replacement.
    fn stamp(&self) -> Vec<Option<(SystemTime, u64)>> {
        [&self.ca, &self.cert, &self.key]
            .iter()
            .map(|path| {
                let meta = std::fs::metadata(path).ok()?;
                Some((meta.modified().ok()?, meta.len()))
            })
            .collect()
    }
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

#[derive(Debug, Clone)]
pub(crate) struct Configs {
    server: Arc<rustls::ServerConfig>,
    pub(crate) client: Arc<ClientMaterial>,
}

/// How often, at most, the files are looked at again.
const RECHECK: Duration = Duration::from_secs(1);

/// TLS material for servers and clients: fixed, or read from files and re-read when they
/// change. Cheap to clone; clones share the material.
#[derive(Debug, Clone)]
pub struct TlsSource {
    inner: Arc<Source>,
}

#[derive(Debug)]
struct Source {
    paths: Option<TlsPaths>,
    state: RwLock<State>,
}

#[derive(Debug)]
struct State {
    configs: Configs,
    stamp: Vec<Option<(SystemTime, u64)>>,
    checked: Instant,
}

impl TlsSource {
    /// `<dir>/ca.pem`, `<dir>/<stem>.pem` and `<dir>/<stem>.key`, followed on disk.
    pub fn from_dir(dir: &Path, stem: &str) -> Result<Self, TlsError> {
        let paths = TlsPaths::in_dir(dir, stem);
        let stamp = paths.stamp();
        let configs = paths.read()?.configs()?;
        Ok(Self::new(Some(paths), configs, stamp))
    }

    /// Material that never changes (tests, tools).
    pub fn fixed(files: &TlsFiles) -> Result<Self, TlsError> {
        Ok(Self::new(None, files.configs()?, Vec::new()))
    }

    fn new(
        paths: Option<TlsPaths>,
        configs: Configs,
        stamp: Vec<Option<(SystemTime, u64)>>,
    ) -> Self {
        Self {
            inner: Arc::new(Source {
                paths,
                state: RwLock::new(State {
                    configs,
                    stamp,
                    checked: Instant::now(),
                }),
            }),
        }
    }

    pub(crate) fn current(&self) -> Configs {
        let Some(paths) = &self.inner.paths else {
            return self
                .inner
                .state
                .read()
                .expect("not poisoned")
                .configs
                .clone();
        };
        {
            let state = self.inner.state.read().expect("not poisoned");
            if state.checked.elapsed() < RECHECK {
                return state.configs.clone();
            }
        }
        let mut state = self.inner.state.write().expect("not poisoned");
        if state.checked.elapsed() >= RECHECK {
            state.checked = Instant::now();
            let stamp = paths.stamp();
            if stamp != state.stamp {
                // A half-written replacement fails to load: keep serving with the old material
                // and look again next time.
                match paths.read().and_then(|files| files.configs()) {
                    Ok(configs) => {
                        tracing::info!(certificate = %paths.cert.display(), "TLS material reloaded");
                        state.configs = configs;
                        state.stamp = stamp;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "new TLS material does not load; keeping the old");
                    }
                }
            }
        }
        state.configs.clone()
    }

    pub(crate) fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.current().server
    }

    /// A client configuration that accepts only `expected` at the other end.
    pub(crate) fn client_config(
        &self,
        expected: &ExpectedServer,
    ) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        self.current().client.config(expected.clone()).map(Arc::new)
    }
}

impl TryFrom<TlsFiles> for TlsSource {
    type Error = TlsError;

    fn try_from(files: TlsFiles) -> Result<Self, TlsError> {
        Self::fixed(&files)
    }
}
